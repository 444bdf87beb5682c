"""Local rules. Each module here registers its config model and factory with ``RULES``."""

from .base import RULES, Rule, RuleConfigBase

RULES.load()

__all__ = ["RULES", "Rule", "RuleConfigBase"]
