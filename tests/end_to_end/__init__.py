"""The pipeline end to end: the local stack, the CLI as a person runs it, the gallery in
Chromium, the deploy venv, real pip builds. All marked slow."""
