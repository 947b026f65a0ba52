DROP TABLE gate_decisions;
