"""A pruned scikit-learn MLPClassifier for the 8x8 digits, exported with skl2onnx and quantized.

MLPClassifier(hidden (128, 64), relu, Adam) on x = pixels/16; then global magnitude pruning of
the three weight matrices in steps (50, 70, 80, 90%; intercepts are not pruned), each step
fine-tuned with partial_fit one mini-batch at a time, re-applying the masks after every step.
skl2onnx converts it (zipmap off). Its graph keeps what skl2onnx emits for a classifier:
Cast -> (MatMul, Add, Relu) x2 -> MatMul, Add -> Softmax -> outputs
  label          int64 [N]       the predicted class (ArgMax -> ai.onnx.ml ArrayFeatureExtractor
                                 over the class list -> Reshape -> Cast)
  probabilities  float32 [N, 10] softmax of the scores (no raw-score option exists for MLPs)
The MatMul weights are constant initializers ([in, out]); the Adds carry [1, out] intercepts.
Writes models/digits_mlp_float.onnx and the per-tensor QDQ int8 models/digits_mlp.onnx.

    .venv/bin/python -m models.digits_mlp      (or: .venv/bin/python models/digits_mlp.py)
"""

import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file or as -m

import numpy as np
import onnx
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from models.common import (MODELS_DIR, OPSET, accuracy_onnxruntime, calib_data, describe_graph,
                           global_prune_masks, load_data, quantize, report_int8, run_onnxruntime,
                           save_model, sparsity, write_data_files)

SEED = 0
PRUNE_STEPS = (0.5, 0.7, 0.8, 0.9)
EPOCHS, FINETUNE_EPOCHS, BATCH = 60, 10, 32

FLOAT_PATH = MODELS_DIR / "digits_mlp_float.onnx"
INT8_PATH = MODELS_DIR / "digits_mlp.onnx"


def finetune(clf, x, y, masks, epochs, rng):
    """partial_fit one mini-batch per call so the masks are re-applied after every Adam step.
    The masks multiply coefs_ in place: sklearn's Adam optimizer holds references to those very
    arrays, so reassigning them would detach the optimizer from the model."""
    with warnings.catch_warnings():
        # each call gets <= BATCH samples, so sklearn "clips" batch_size: expected, not a problem
        warnings.filterwarnings("ignore", message="Got `batch_size`", category=UserWarning)
        for _ in range(epochs):
            order = rng.permutation(len(x))
            for i in range(0, len(x), BATCH):
                idx = order[i:i + BATCH]
                clf.partial_fit(x[idx], y[idx])
                for coef, mask in zip(clf.coefs_, masks):
                    coef *= mask


def export(clf, path):
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    model = convert_sklearn(clf, initial_types=[("x", FloatTensorType([None, 64]))],
                            options={id(clf): {"zipmap": False}}, target_opset=OPSET)
    # skl2onnx leaves the batch dimension unnamed (or "unk__0"); name it like the other models
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "N"
    model.graph.name = "digits_mlp"  # skl2onnx names the graph with a random uuid
    save_model(model, path)


def main():
    write_data_files()
    x_train, x_test, y_train, y_test = load_data()
    rng = np.random.default_rng(SEED)
    clf = MLPClassifier(hidden_layer_sizes=(128, 64), activation="relu", solver="adam",
                        batch_size=BATCH, learning_rate_init=1e-3, max_iter=EPOCHS,
                        random_state=SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed epoch budget is the point
        clf.fit(x_train, y_train)
    print(f"dense: test accuracy {clf.score(x_test, y_test):.4f}")
    for step in PRUNE_STEPS:
        masks = global_prune_masks(clf.coefs_, step)
        for coef, mask in zip(clf.coefs_, masks):
            coef *= mask
        before = clf.score(x_test, y_test)
        finetune(clf, x_train, y_train, masks, FINETUNE_EPOCHS, rng)
        print(f"pruned {sparsity(clf.coefs_):.3f}: test accuracy {before:.4f} right after "
              f"pruning, {clf.score(x_test, y_test):.4f} after fine-tuning")
    for i, coef in enumerate(clf.coefs_):
        print(f"  layer {i}: {coef.shape}, {np.mean(coef == 0):.3f} zero")

    export(clf, FLOAT_PATH)
    # the exported graph must agree with sklearn (output 1 is the probabilities)
    np.testing.assert_allclose(run_onnxruntime(FLOAT_PATH, x_test)[1], clf.predict_proba(x_test),
                               rtol=1e-4, atol=1e-5)
    quantize(FLOAT_PATH, INT8_PATH, calib_data(x_train), per_channel=False)

    for name, path in (("float", FLOAT_PATH), ("onnxruntime int8", INT8_PATH)):
        label = run_onnxruntime(path, x_test)[0]
        print(f"{name}: test accuracy from 'label' {np.mean(label == y_test):.4f}, "
              f"argmax 'probabilities' {accuracy_onnxruntime(path, x_test, y_test, output=1):.4f}")
    # map quantized weight names back to the float coefficients via the float graph's order
    float_model = onnx.load(str(FLOAT_PATH))
    names = [n.input[1] for n in float_model.graph.node if n.op_type == "MatMul"]
    report_int8(INT8_PATH, {f"{n}_quantized": c for n, c in zip(names, clf.coefs_)})
    print(describe_graph(INT8_PATH))


if __name__ == "__main__":
    main()
