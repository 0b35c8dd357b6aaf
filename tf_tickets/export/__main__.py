"""`python -m tf_tickets.export`: the export command line."""
from tf_tickets.export import cli

cli.run()
