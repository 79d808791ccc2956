"""Runs: train and evaluate (the grid, the model-size study), average runs, distribute them on Ray, keep their results."""
