"""Analysis of trained pipelines and runs: two runs compared, the AIF gate, how language-neutral each layer is."""
