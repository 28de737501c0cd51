"""Drop duplicate <script> tags from every page.

With Sphinx 7.4, a script that an extension registers after the builder is initialised (sphinx-thebe's
``const THEBE_JS_URL = ...``, sphinx-togglebutton's selector, the MathJax file) is added twice: once as
filename ``None`` and once as ``""``, which Sphinx does not recognise as the same asset. The second copy of a
``const`` is a JavaScript error in the browser ("Identifier has already been declared"), and MathJax loaded
twice fails too. This keeps the first copy of each script (same file, same inline body).
"""


def _dedup(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for script in scripts:
        attrs = getattr(script, "attributes", {}) or {}
        key = (getattr(script, "filename", str(script)) or "", attrs.get("body", ""))
        if key in seen:
            continue
        seen.add(key)
        kept.append(script)
    scripts[:] = kept


def setup(app):
    app.connect("html-page-context", _dedup, priority=900)  # after the themes have added their assets
    return {"parallel_read_safe": True, "parallel_write_safe": True}
