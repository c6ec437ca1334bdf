"""Database access: the pool bridge to trio, migrations, grants and one module per table group."""
