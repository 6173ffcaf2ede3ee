"""The WSGI entry point for gunicorn: ``gunicorn 'reference_bot.wsgi:app'`` (config from the environment).

The import is relative, so a copy of the template under another name serves itself: ``'mybot.wsgi:app'``.
"""

from . import create_app

app = create_app()
