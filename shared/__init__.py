"""Code both programs share: the sync protocol's wire models, money and ID helpers.

Nothing here may import Qt or a database driver; a test enforces it, because the terminal's
headless core and the server both depend on this package.
"""
