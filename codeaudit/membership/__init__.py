"""Membership-inference audits of VP models: features, attacks, evaluation, reports."""

from __future__ import annotations
