"""The WSGI entry point for gunicorn: ``gunicorn 'reference_bot.wsgi:app'`` (config from the environment)."""

from reference_bot import create_app

app = create_app()
