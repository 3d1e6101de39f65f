"""The platform's workflows over the model protocol: train -> evaluate -> promote -> report (``training``), one
promotion policy (``promotion``), batch inference (``inference``), scheduled monitoring (``monitoring``) and the
master run (``run``)."""
