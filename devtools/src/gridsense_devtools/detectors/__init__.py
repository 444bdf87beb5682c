"""ONNX detectors built without training: ``synthetic`` finds the rendered test figures,
``timing`` costs what a nano-class detector costs."""
