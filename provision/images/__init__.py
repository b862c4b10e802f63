"""``provision image``: plan a CUDA deep-learning image, render its Dockerfile, build it, test it.

resolve (pure plan) -> render (Jinja2 templates in dockerfiles/) -> backends (docker SDK legacy
builder, or the docker CLI with BuildKit) -> test (envcheck inside the container). Only
``_docker.py`` imports the docker SDK, lazily.
"""
