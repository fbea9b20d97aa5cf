"""The store: tables, the unit of work with its repositories, migrations, and the SQL of each aggregate."""
