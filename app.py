"""The hfmat web app, as a Hugging Face Space runs it (`python app.py`), on the shipped models.

Locally: `pip install -e ".[app]"` then `python app.py` or `hfmat app` (docs/app.md)."""

from hfmat.app import launch

if __name__ == "__main__":
    launch()
