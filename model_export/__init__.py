"""Training, evaluation and export of the Noctis edge and server models."""
