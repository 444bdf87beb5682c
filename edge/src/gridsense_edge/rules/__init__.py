"""Local rules. Each module here registers its config model and factory with ``RULES``,
imported when a config names its type (``RULES.index``) or when every type is asked for."""

from .base import RULES, Rule, RuleConfigBase

__all__ = ["RULES", "Rule", "RuleConfigBase"]
