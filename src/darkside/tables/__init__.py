"""The paper's tables: its numbers (paper_tables.yaml) and the regenerated ones, from metric JSON only."""
