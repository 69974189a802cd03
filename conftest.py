"""Top-level pytest configuration: the ``--cifar-*`` options and fixtures come from the plugin."""

pytest_plugins = ["cifar.pytest_plugin"]
