from catalog.cli import app

app()
