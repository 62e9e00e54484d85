"""Pieces shared by the sandbox servers."""
