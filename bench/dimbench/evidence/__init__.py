"""What was measured and what it means, below the stages that measure (study) and tell (report):
reading results back strictly, the decision rule, and the words numbers are printed in."""
