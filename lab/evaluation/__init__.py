"""Scoring the counter pair and the pipeline on annotated imagery (``eval``), and calibrating
the pipeline on it (``calibrate``: tile size, error model).
"""
