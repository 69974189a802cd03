"""CLI commands of the optimizer study (added by the study module when present)."""

STUDY_COMMANDS: dict = {}


def add_study_commands(commands, add_data_options, add_common_options) -> None:
    """Register the optimizer-study subcommands on ``commands``."""
