"""Benchmark evaluation: YouCook2 and MSR-VTT retrieval, CrossTask step localisation, held-out clips."""
