"""`run joint`: the NER and POS recipes trained as one pipeline on one transformer, reading both corpora interleaved."""
import configparser
import json
from importlib.metadata import entry_points

import pytest
import spacy
from conftest import REPO, SENTENCES, TINY_WIDTH
from pipelines import entity_docs, one_torch_thread, tagged_docs
from spacy.cli.debug_config import debug_config
from spacy.cli.train import train as spacy_train
from spacy.training import Corpus
from spacy.util import load_config, registry
from thinc.api import Adam, Config
from typer.testing import CliRunner

from spacy_dlfa.cli import app
from spacy_dlfa.corpora.docbin import write_docbin
from spacy_dlfa.corpora.ud import conllu_to_docs
from spacy_dlfa.corpora.wikiann import wikiann_to_docs
from spacy_dlfa.runs.joint import joint_config
from spacy_dlfa.runs.recipe import RecipeError, load_recipe, recipe_config

RECIPE = REPO / "reports" / "recipe.json"
WIKIANN = "Angela\tB-PER\nMerkel\tI-PER\nin\tO\nBerlin\tB-LOC\n\nUN\tB-ORG\n\nParis\tB-LOC\nrains\tO\n"
CONLLU = ("1\tIt\tit\tPRON\t_\t_\t2\tnsubj\t_\t_\n2\trains\train\tVERB\t_\t_\t0\troot\t_\tSpaceAfter=No\n"
          "3\t.\t.\tPUNCT\t_\t_\t2\tpunct\t_\t_\n\n1\tYes\tyes\tINTJ\t_\t_\t0\troot\t_\t_\n\n")


def _corpora(tmp_path, ner_docs=None, pos_docs=None):
    """corpus/ner and corpus/pos folders with train.spacy and dev.spacy (empty DocBins unless docs are given)."""
    folders = {}
    for task, docs in (("ner", ner_docs), ("pos", pos_docs)):
        folders[task] = tmp_path / "corpus" / task
        for split in ("train", "dev"):
            write_docbin(docs or [], folders[task] / f"{split}.spacy")
    return folders


def _joint(tmp_path, model="assets/e5-small", width=384, max_steps=1500, **docs):
    folders = _corpora(tmp_path, **docs)
    return joint_config(RECIPE, folders["ner"], folders["pos"], REPO / "configs", str(model), width, max_steps, 256, 0), folders


def _recipe(task, folder, max_steps=1500):
    return recipe_config(load_recipe(RECIPE, task), REPO / "configs", folder, "assets/e5-small", 384, max_steps, 256, 0)


def test_the_joint_config_is_the_ner_recipe_plus_the_pos_recipes_tagger(tmp_path, tiny_bert):
    config, folders = _joint(tmp_path)
    ner, pos = _recipe("ner", folders["ner"]), _recipe("pos", folders["pos"])
    assert config["nlp"]["pipeline"] == ["transformer", "ner", "tagger"]
    assert config["components"]["ner"] == ner["components"]["ner"]
    assert config["components"]["tagger"] == pos["components"]["tagger"]
    assert config["training"]["optimizer"] == ner["training"]["optimizer"]  # 1,500 steps: the NER recipe's as it is
    assert config["nlp"]["tokenizer"] == ner["nlp"]["tokenizer"]
    resolved = config.interpolate()
    listeners = {name: resolved["components"][name]["model"]["tok2vec"] for name in ("ner", "tagger")}
    # the NER recipe: mean fusion of layer 10; the POS recipe: aif_last (the AIF on the last layer alone)
    assert (listeners["ner"]["fusion_layer"], listeners["ner"]["fusion"]["@architectures"]) == (10, "spacy-dlfa.MeanFusion.v1")
    assert (listeners["tagger"]["fusion_layer"], listeners["tagger"]["fusion"]["@architectures"]) == (-1, "spacy-dlfa.AIF.v1")
    assert listeners["tagger"]["upstream"] == listeners["ner"]["upstream"]
    transformer = resolved["components"]["transformer"]["model"]
    assert transformer["keep_hidden_layers"] == [10, -1] and transformer["freeze_layers"] == 3
    assert resolved["training"]["optimizer"]["@optimizers"] == "spacy-dlfa.UniformAveragingAdam.v1"
    assert resolved["training"]["score_weights"] == {"ents_f": 0.5, "ents_p": None, "ents_r": None, "ents_per_type": None, "tag_acc": 0.5,
                                                     "pos_acc": None, "tag_micro_p": None, "tag_micro_r": None, "tag_micro_f": None}
    for split in ("train", "dev"):
        assert resolved["corpora"][split]["@readers"] == "spacy-dlfa.InterleavedCorpus.v1"
        assert resolved["corpora"][split]["paths"] == {task: str(folders[task] / f"{split}.spacy") for task in ("ner", "pos")}
        assert resolved["corpora"][split]["gold_preproc"] is True
    # keep_hidden_layers follows the listeners' layers when they are overridden
    moved = Config().from_str(config.to_str(), overrides={"components.ner.model.tok2vec.fusion_layer": 4}).interpolate()
    assert moved["components"]["transformer"]["model"]["keep_hidden_layers"] == [4, -1]
    # what `spacy debug config` checks: every setting resolves, the corpora too
    path = tmp_path / "joint.cfg"
    config.to_disk(path)
    debug_config(path, overrides={"paths.transformer": str(tiny_bert)})


def test_over_other_run_lengths_the_schedule_and_the_averaging_scale(tmp_path):
    optimizer = _joint(tmp_path, max_steps=3000)[0].interpolate()["training"]["optimizer"]
    assert optimizer["learn_rate"]["total_steps"] == 3000 and optimizer["average_start"] == 1500  # the recipe: 750 of 1,500


def test_bad_input_is_refused_naming_the_file_or_the_option(tmp_path):
    folders = _corpora(tmp_path)
    only_ner = tmp_path / "only_ner.json"
    only_ner.write_text(json.dumps({"ner": json.loads(RECIPE.read_text())["ner"]}))
    with pytest.raises(RecipeError, match=f"^{only_ner}: no recipe for pos"):
        joint_config(only_ner, folders["ner"], folders["pos"], REPO / "configs", "m", 384)
    recipes = json.loads(RECIPE.read_text())
    recipes["pos"]["overrides"]["components.transformer.model.freeze_layers"] = 2
    unshared = tmp_path / "unshared.json"
    unshared.write_text(json.dumps(recipes))
    with pytest.raises(ValueError, match=r"do not share a transformer architecture \(transformer.model.freeze_layers: "
                                         rf"{unshared} \(ner\) = 3, {unshared} \(pos\) = 2\)"):
        joint_config(unshared, folders["ner"], folders["pos"], REPO / "configs", "m", 384)
    (folders["pos"] / "dev.spacy").unlink()
    with pytest.raises(ValueError, match=f"--pos-corpus {folders['pos']}: no dev.spacy"):
        joint_config(RECIPE, folders["ner"], folders["pos"], REPO / "configs", "m", 384)
    result = CliRunner().invoke(app, ["run", "joint", str(tmp_path / "joint.cfg"), "--ner-corpus", str(tmp_path / "none"),
                                      "--pos-corpus", str(folders["pos"])])
    assert result.exit_code == 1 and "--ner-corpus" in result.output and not (tmp_path / "joint.cfg").exists()
    with pytest.raises(ValueError, match="no such file: pos = "):
        registry.resolve({"c": {"@readers": "spacy-dlfa.InterleavedCorpus.v1", "paths": {"ner": str(folders["ner"] / "dev.spacy"),
                                                                                        "pos": str(folders["pos"] / "dev.spacy")}}})


def test_the_cli_writes_the_config(tmp_path):
    folders = _corpora(tmp_path)
    out = tmp_path / "training" / "joint.cfg"
    result = CliRunner().invoke(app, ["run", "joint", str(out), "--ner-corpus", str(folders["ner"]), "--pos-corpus", str(folders["pos"]),
                                      "--max-steps", "3000", "--batch-size", "128", "--seed", "2"])
    assert result.exit_code == 0, result.output
    config = load_config(out, interpolate=True)
    assert (config["training"]["max_steps"], config["training"]["batcher"]["size"], config["system"]["seed"]) == (3000, 128, 2)
    assert config["nlp"]["pipeline"] == ["transformer", "ner", "tagger"]


def test_the_reader_interleaves_and_keeps_what_a_doc_lacks_missing(tmp_path):
    nlp = spacy.blank("xx")
    (tmp_path / "ner.tsv").write_text(WIKIANN)
    (tmp_path / "pos.conllu").write_text(CONLLU)
    write_docbin(wikiann_to_docs(tmp_path / "ner.tsv", nlp.vocab)[0], tmp_path / "ner.spacy")
    write_docbin(conllu_to_docs(tmp_path / "pos.conllu", nlp.vocab)[0], tmp_path / "pos.spacy")
    reader = {"@readers": "spacy-dlfa.InterleavedCorpus.v1", "gold_preproc": True,
              "paths": {"ner": str(tmp_path / "ner.spacy"), "pos": str(tmp_path / "pos.spacy")}}
    examples = list(registry.resolve({"corpus": reader})["corpus"](nlp))
    assert [eg.reference.text.strip() for eg in examples] == ["Angela Merkel in Berlin", "It rains.", "UN", "Yes", "Paris rains"]
    ner_egs, pos_egs = [examples[i] for i in (0, 2, 4)], [examples[i] for i in (1, 3)]
    # a UD doc's entities are missing (ENT_IOB 0, not O): the NER has no gold in it
    assert all(token.ent_iob == 0 for eg in pos_egs for token in eg.reference)
    assert all(tag is None for eg in pos_egs for tag in eg.get_aligned_ner())
    assert [token.tag_ for token in pos_egs[0].reference] == ["PRON", "VERB", "PUNCT"]
    # a WikiANN doc's tags are empty (missing to the tagger), its O tokens are O
    assert all(token.tag_ == "" for eg in ner_egs for token in eg.reference)
    assert ner_egs[0].get_aligned_ner() == ["B-PER", "L-PER", "O", "U-LOC"]
    ner = spacy.blank("xx").add_pipe("ner")
    ner.add_label("PER")
    assert [ner.moves.has_gold(eg) for eg in examples] == [True, False, True, False, True]
    limited = list(registry.resolve({"corpus": {**reader, "limit": 1}})["corpus"](nlp))
    assert [eg.reference.text.strip() for eg in limited] == ["Angela Merkel in Berlin", "It rains."]  # limit: per file


def test_the_reader_is_a_spacy_readers_entry_point():
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    declared = parser["options.entry_points"]["spacy_readers"].split("=")
    assert [part.strip() for part in declared] == ["spacy-dlfa.InterleavedCorpus.v1", "spacy_dlfa.architectures:build_interleaved_corpus"]
    installed = {point.name: point.value for point in entry_points(group="spacy_readers")}  # what spacy's registry reads
    assert installed["spacy-dlfa.InterleavedCorpus.v1"] == "spacy_dlfa.architectures:build_interleaved_corpus"


def test_a_joint_pipeline_trains_tags_finds_entities_and_learns_each_task_from_its_own_docs(tmp_path, tiny_bert):
    steps = 12
    config, folders = _joint(tmp_path, model=tiny_bert, width=TINY_WIDTH, max_steps=steps,
                             ner_docs=entity_docs(spacy.blank("xx").vocab), pos_docs=tagged_docs(spacy.blank("xx").vocab))
    path = tmp_path / "joint.cfg"
    config.to_disk(path)
    overrides = {"components.ner.model.tok2vec.fusion_layer": 1, "components.transformer.model.freeze_layers": 1,
                 "nlp.batch_size": 8, "training.eval_frequency": 6, "training.logger.progress_bar": False,
                 "training.optimizer.learn_rate.initial_rate": 0.01, "training.optimizer.learn_rate.warmup_steps": 1}
    with one_torch_thread():
        spacy_train(path, tmp_path / "out", overrides=overrides)
        nlp = spacy.load(tmp_path / "out" / "model-last")
        docs = list(nlp.pipe(SENTENCES))
        assert all(token.tag_ for doc in docs for token in doc)
        assert any(doc.ents for doc in docs)
        assert nlp.get_pipe("transformer").model.attrs["keep_hidden_layers"] == [1, -1]
        scores = {task: nlp.evaluate(list(Corpus(folders[task] / "dev.spacy", gold_preproc=True)(nlp))) for task in ("ner", "pos")}
        assert scores["ner"]["ents_f"] is not None and scores["ner"]["tag_acc"] is None
        assert scores["pos"]["tag_acc"] is not None and scores["pos"]["ents_f"] is None
        # the other task's docs teach nothing: no NER loss (and no NER update) on POS docs, no tagger loss on NER docs
        examples = {task: list(Corpus(folders[task] / "train.spacy", gold_preproc=True)(nlp)) for task in ("ner", "pos")}
        ner_weights = nlp.get_pipe("ner").model.to_bytes()
        losses = {}
        nlp.get_pipe("ner").update(examples["pos"], sgd=Adam(0.01), losses=losses)
        assert losses["ner"] == 0.0 and nlp.get_pipe("ner").model.to_bytes() == ner_weights
        tagger = nlp.get_pipe("tagger")
        for task, has_loss in (("ner", False), ("pos", True)):
            docs = list(nlp.get_pipe("transformer").pipe(eg.predicted for eg in examples[task]))
            probabilities = [tagger.model.ops.softmax(scores) for scores in tagger.model.predict(docs)]
            loss, gradient = tagger.get_loss(examples[task], probabilities)
            assert (loss > 0) == has_loss and (sum(abs(d).sum() for d in gradient) > 0) == has_loss
