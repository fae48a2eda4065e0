"""ONNX export of registered versions, with a parity check against the pipeline itself.

Needs the optional extra `onnx` (skl2onnx, onnxmltools, onnxruntime, onnx); every entry
point says how to install it when it is missing (`core.onnx.convert.require`)."""
