"""Local rules. Each module here registers its config model and factory with ``RULES``."""

from .base import RULES, IncidentEvent, Rule, RuleConfigBase

RULES.load()

__all__ = ["RULES", "IncidentEvent", "Rule", "RuleConfigBase"]
