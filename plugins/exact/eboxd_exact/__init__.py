"""eboxd's Exact Online exporter, a plugin distribution of its own (entry-point group ``eboxd``).

The distribution is installed by the set-up so that exporters register exactly as third-party
plugins do; the exporter itself arrives with the plugin hook specifications.
"""
