"""A web page for a trained workdir (``python -m scfa_jax.tools.serve``; docs/serve.md).

``page`` turns an uploaded file into everything the page shows (testable
without a browser), ``examples`` writes a few test-split videos to try,
``app`` lays the page out with Gradio (the optional ``serve`` extra).
"""
