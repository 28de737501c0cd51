"""The report layer: style, metric plots, pictures of networks, claims and widgets. It draws what it is
given: it never trains and never imports sweeps."""
