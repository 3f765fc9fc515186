"""Learning tasks: boundary conditions plus training and test data.

A :class:`Task` couples a network with its :class:`~edgesim.physics.Boundary`
and the input/target values of every example.  Inputs and targets are arrays
of shape ``(n_rows, n_examples)`` in volts.  All random choices come from the
``numpy.random.Generator`` passed in, so a task is a pure function of its seed.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources

import numpy as np

from .network import Network, voltage_divider
from .physics import Boundary

__all__ = [
    "Task",
    "edge_regression",
    "node_regression",
    "node_allostery",
    "iris_classification",
    "random_iris_nodes",
    "divider_tracking",
    "load_iris",
    "SPECIES",
    "xor_task",
    "nonlinear_regression",
    "nonlinear_classification",
    "interleaved_moons",
    "concentric_circles",
    "linear_classifier_accuracy",
    "best_linear_error",
]

SPECIES = ("setosa", "versicolor", "virginica")


@dataclass(frozen=True, eq=False)
class Task:
    """A learning task on a network.

    Attributes
    ----------
    name : str
    network : Network
    boundary : Boundary
    train_inputs, test_inputs : ndarray (n_inputs, n_examples)
        Input row values (volts).
    train_targets, test_targets : ndarray (n_outputs, n_examples)
        Desired output values (volts); for classification these are
        placeholders replaced by the per-epoch class targets.
    kind : {"regression", "classification"}
    train_labels, test_labels : ndarray of int or None
        Class of every example (classification only).
    target_schedule : ndarray (n_phases, n_outputs) or None
        If given, the desired output of every training example switches to
        the next row every ``steps_per_target`` steps (tracking tasks).
    class_values : ndarray (n_outputs, n_classes) or None
        Classification with fixed targets: the desired outputs of each class
        (the training targets are these, and an example is classified by the
        nearest class value).  ``None``: the laboratory protocol, class means
        pushed apart every epoch.
    """

    name: str
    network: Network
    boundary: Boundary
    train_inputs: np.ndarray
    train_targets: np.ndarray
    test_inputs: np.ndarray
    test_targets: np.ndarray
    kind: str = "regression"
    train_labels: np.ndarray | None = None
    test_labels: np.ndarray | None = None
    target_schedule: np.ndarray | None = None
    steps_per_target: int = 0
    class_values: np.ndarray | None = None

    def __post_init__(self):
        self.boundary.validate(self.network)
        ni, no = len(self.boundary.inputs), len(self.boundary.outputs)
        for label, arr, rows in (("train_inputs", self.train_inputs, ni), ("train_targets", self.train_targets, no),
                                 ("test_inputs", self.test_inputs, ni), ("test_targets", self.test_targets, no)):
            arr = np.asarray(arr, dtype=float)
            if arr.ndim != 2 or arr.shape[0] != rows:
                raise ValueError(f"task {self.name}: {label} must have shape ({rows}, n_examples), got {arr.shape}")
            if not np.isfinite(arr).all():
                raise ValueError(f"task {self.name}: {label} contains NaN or infinite values")
            object.__setattr__(self, label, arr)
        if self.train_inputs.shape[1] != self.train_targets.shape[1]:
            raise ValueError(f"task {self.name}: train inputs and targets have different example counts")
        if self.test_inputs.shape[1] != self.test_targets.shape[1]:
            raise ValueError(f"task {self.name}: test inputs and targets have different example counts")
        if self.train_inputs.shape[1] == 0:
            raise ValueError(f"task {self.name}: no training examples")
        if self.kind not in ("regression", "classification"):
            raise ValueError(f"task {self.name}: unknown task kind {self.kind!r}")
        if self.kind == "classification" and (self.train_labels is None or self.test_labels is None):
            raise ValueError(f"task {self.name}: classification needs train and test labels")
        if self.class_values is not None:
            values = np.asarray(self.class_values, dtype=float)
            if self.kind != "classification" or values.shape != (no, self.n_classes):
                raise ValueError(f"task {self.name}: class_values must be (n_outputs, n_classes) = "
                                 f"({no}, {self.n_classes}) for a classification, got {values.shape}")
            object.__setattr__(self, "class_values", values)
        if self.target_schedule is not None:
            sched = np.asarray(self.target_schedule, dtype=float).reshape(-1, no)
            if not np.isfinite(sched).all():
                raise ValueError(f"task {self.name}: target schedule contains NaN")
            if self.steps_per_target < 1:
                raise ValueError(f"task {self.name}: steps_per_target must be >= 1")
            object.__setattr__(self, "target_schedule", sched)

    @property
    def n_train(self) -> int:
        return self.train_inputs.shape[1]

    @property
    def n_test(self) -> int:
        return self.test_inputs.shape[1]

    @property
    def n_classes(self) -> int:
        return 0 if self.train_labels is None else int(max(self.train_labels.max(), self.test_labels.max()) + 1)


def _check_nodes(network: Network, nodes, role: str):
    for v in nodes:
        if not 0 <= int(v) < network.n_nodes:
            raise ValueError(f"{role} node {v} does not exist in {network.name} (nodes 0..{network.n_nodes - 1})")


def edge_regression(network: Network, rng: np.random.Generator, n_sources: int = 2, n_targets: int = 2,
                    n_train: int = 20, n_test: int = 100, coefficient_range=(0.1, 0.5),
                    input_range=(0.0, 1.0), label_noise: float = 0.0) -> Task:
    """Edge-based linear regression of Stern et al. 2024: ``dV_target = A dV_source``.

    Source and target edges are drawn at random (all distinct), the ground is
    a random node, the entries of ``A`` are uniform in ``coefficient_range``
    and source drops uniform in ``input_range``.  ``label_noise`` (V) adds
    Gaussian noise to the training targets only (drawn last, so the rest of
    the task does not depend on it); the test targets stay exact.
    """
    if n_sources + n_targets > network.n_edges:
        raise ValueError("more source and target edges than the network has edges")
    chosen = rng.choice(network.n_edges, n_sources + n_targets, replace=False)
    ground = int(rng.integers(network.n_nodes))
    rows = [tuple(int(v) for v in network.edges[e]) for e in chosen]
    bc = Boundary(ground, rows[:n_sources], rows[n_sources:])
    A = rng.uniform(*coefficient_range, size=(n_targets, n_sources))
    x_train = rng.uniform(*input_range, size=(n_sources, n_train))
    x_test = rng.uniform(*input_range, size=(n_sources, n_test))
    return Task("edge regression", network, bc, x_train, _noisy(A @ x_train, label_noise, rng), x_test, A @ x_test)


def _noisy(targets: np.ndarray, label_noise: float, rng: np.random.Generator) -> np.ndarray:
    """Training targets with Gaussian label noise of standard deviation ``label_noise`` (none: unchanged)."""
    return targets + rng.normal(0.0, label_noise, targets.shape) if label_noise else targets


def node_regression(network: Network, input_nodes, output_nodes, ground: int, coefficients,
                    rng: np.random.Generator, n_train: int = 400, n_test: int = 20,
                    input_range=(1.0, 5.0), label_noise: float = 0.0) -> Task:
    """Node-based linear regression (Dillavou et al. 2022): ``V_out = A V_in``.

    Inputs are uniform in ``input_range`` volts; the ground node is the 0 V
    input.  A passive network can only produce outputs that are weighted
    averages of the input and ground voltages, so ``A`` should be
    non-negative with row sums below one.  ``label_noise`` (V) adds Gaussian
    noise to the training targets only.
    """
    _check_nodes(network, list(input_nodes) + list(output_nodes) + [ground], "task")
    A = np.atleast_2d(np.asarray(coefficients, dtype=float))
    if A.shape != (len(output_nodes), len(input_nodes)):
        raise ValueError(f"regression coefficients must have shape {(len(output_nodes), len(input_nodes))}, got {A.shape}")
    bc = Boundary(ground, [(v, -1) for v in input_nodes], [(v, -1) for v in output_nodes])
    x_train = rng.uniform(*input_range, size=(len(input_nodes), n_train))
    x_test = rng.uniform(*input_range, size=(len(input_nodes), n_test))
    return Task("node regression", network, bc, x_train, _noisy(A @ x_train, label_noise, rng), x_test, A @ x_test)


def node_allostery(network: Network, inputs: dict, outputs: dict, ground: int) -> Task:
    """Allostery: fixed input voltages, desired output voltages (one example).

    ``inputs`` and ``outputs`` map node -> volts.  The test set is the training example.
    """
    _check_nodes(network, list(inputs) + list(outputs) + [ground], "task")
    bc = Boundary(ground, [(v, -1) for v in inputs], [(v, -1) for v in outputs])
    x = np.array(list(inputs.values()), dtype=float)[:, None]
    y = np.array(list(outputs.values()), dtype=float)[:, None]
    return Task("allostery", network, bc, x, y, x.copy(), y.copy())


def random_iris_nodes(network: Network, rng: np.random.Generator) -> tuple[int, list[int], list[int]]:
    """A ground, 4 input and 3 output nodes of ``network``, all distinct, drawn at random."""
    if network.n_nodes < 8:
        raise ValueError(f"Iris needs 8 distinct nodes (ground, 4 inputs, 3 outputs); {network.name} has "
                         f"{network.n_nodes}")
    nodes = [int(v) for v in rng.choice(network.n_nodes, 8, replace=False)]
    return nodes[0], nodes[1:5], nodes[5:]


def load_iris() -> tuple[np.ndarray, np.ndarray]:
    """The Iris data (Fisher 1936): features (150, 4) in cm and species labels 0..2."""
    text = (resources.files("edgesim") / "data" / "iris.csv").read_text()
    rows = list(csv.reader(text.strip().splitlines()))[1:]
    features = np.array([[float(v) for v in r[:4]] for r in rows])
    labels = np.array([SPECIES.index(r[4]) for r in rows])
    return features, labels


def iris_classification(network: Network, input_nodes, output_nodes, ground: int, rng: np.random.Generator,
                        n_train_per_class: int = 10, voltage_range=(0.0, 5.0)) -> Task:
    """Iris classification with the laboratory protocol of Dillavou et al. 2022.

    Each of the 4 features is scaled linearly so that its range over the
    data set spans ``voltage_range`` volts and applied at one input node;
    ``n_train_per_class`` flowers per species train, the rest test.  Targets
    are set by the trainer each epoch (see :mod:`edgesim.trainer`).
    """
    if len(input_nodes) != 4 or len(output_nodes) != 3:
        raise ValueError("Iris needs 4 input nodes (one per feature) and 3 output nodes (one per species)")
    _check_nodes(network, list(input_nodes) + list(output_nodes) + [ground], "task")
    features, labels = load_iris()
    lo, hi = features.min(0), features.max(0)
    volts = voltage_range[0] + (features - lo) / (hi - lo) * (voltage_range[1] - voltage_range[0])
    train = np.concatenate([rng.choice(np.flatnonzero(labels == c), n_train_per_class, replace=False)
                            for c in range(3)])
    train = rng.permutation(train)
    test = np.setdiff1d(np.arange(len(labels)), train)
    bc = Boundary(ground, [(v, -1) for v in input_nodes], [(v, -1) for v in output_nodes])
    return Task("iris classification", network, bc, volts[train].T, np.zeros((3, len(train))),
                volts[test].T, np.zeros((3, len(test))), kind="classification",
                train_labels=labels[train], test_labels=labels[test])


def divider_tracking(targets, steps_per_target: int = 100, input_voltage: float = 5.0,
                     network: Network | None = None) -> Task:
    """Voltage divider whose desired output switches every ``steps_per_target`` steps.

    Node 0 is held at ``input_voltage``, node 2 is ground and node 1 the output.
    """
    network = network or voltage_divider()
    targets = np.asarray(targets, dtype=float).reshape(-1, 1)
    if ((targets <= 0) | (targets >= input_voltage)).any():
        raise ValueError(f"divider targets must lie strictly between 0 and {input_voltage} V")
    bc = Boundary(2, [(0, -1)], [(1, -1)])
    x = np.array([[input_voltage]])
    return Task("voltage divider", network, bc, x, targets[:1].T, x.copy(), targets[:1].T.copy(),
                target_schedule=targets, steps_per_target=steps_per_target)


def _held(network: Network, input_nodes, output_nodes, ground: int, bias: dict, differential: bool = False):
    """Boundary with the data inputs first, then nodes held at fixed bias voltages, and the bias values.

    ``differential``: the two output nodes form one output, the drop ``V_a - V_b`` (they must share an edge).
    """
    nodes = list(input_nodes) + list(bias) + list(output_nodes) + [ground]
    _check_nodes(network, nodes, "task")
    if len(set(nodes)) != len(nodes):
        raise ValueError(f"task nodes must be distinct: ground {ground}, inputs {list(input_nodes)}, bias "
                         f"{list(bias)}, outputs {list(output_nodes)}")
    outputs = [tuple(output_nodes)] if differential else [(v, -1) for v in output_nodes]
    bc = Boundary(ground, [(v, -1) for v in list(input_nodes) + list(bias)], outputs)
    return bc, np.array(list(bias.values()), dtype=float).reshape(-1, 1)


def _with_bias(x: np.ndarray, bias: np.ndarray) -> np.ndarray:
    return np.concatenate([x, np.repeat(bias, x.shape[1], 1)], 0)


def xor_task(network: Network, input_nodes, output_nodes, ground: int, bias: dict | None = None,
             logic_levels=(0.0, 1.0), targets=(0.0, 1.0)) -> Task:
    """XOR: two logic inputs, one output (Dillavou et al., PNAS 2024, on the 4x4 transistor lattice).

    The four examples put ``logic_levels[0]`` (logical 0) or ``logic_levels[1]`` (logical 1) volts on the two
    input nodes; the desired output is ``targets[1]`` volts where exactly one input is 1, else ``targets[0]``.
    The output is one node's voltage (``output_nodes`` = one node) or the drop ``V_a - V_b`` between two nodes
    joined by an edge (``output_nodes = [a, b]``): the node voltages of a transistor network rise with every
    input voltage (its Jacobian is an M-matrix), so a single node's voltage cannot fall from (0, 1) to (1, 1);
    a difference of two such voltages can.
    ``bias`` (node -> volts) holds further nodes at fixed voltages in every example.  A linear network's output
    is linear in its inputs, ``c0 + c1 x1 + c2 x2``, which cannot take the XOR values (with x in {0, 1} they would need
    ``c1 = c2 = true - false`` and ``c1 + c2 = 0``, so true = false): only nonlinear edges can learn it.  The test set is the
    training set.
    """
    if len(input_nodes) != 2:
        raise ValueError(f"XOR needs exactly 2 input nodes, got {len(input_nodes)}")
    bias = dict(bias or {})
    output_nodes = [output_nodes] if np.ndim(output_nodes) == 0 else list(output_nodes)
    if len(output_nodes) not in (1, 2):
        raise ValueError(f"XOR has one output: one node, or two nodes whose difference is read; got {output_nodes}")
    bc, b = _held(network, input_nodes, output_nodes, ground, bias, differential=len(output_nodes) == 2)
    lo, hi = logic_levels
    bits = np.array([[0, 0, 1, 1], [0, 1, 0, 1]])
    x = np.where(bits == 1, hi, lo).astype(float)
    y = np.where(bits[0] != bits[1], targets[1], targets[0]).astype(float)[None, :]
    x = _with_bias(x, b)
    return Task("xor", network, bc, x, y, x.copy(), y.copy())


def nonlinear_regression(network: Network, input_node: int, output_node: int, ground: int, coefficients,
                         rng: np.random.Generator, n_train: int = 20, n_test: int = 100, input_range=(0.0, 1.0),
                         bias: dict | None = None, label_noise: float = 0.0) -> Task:
    """Regression of a polynomial of one input: ``V_out = c0 + c1 x + c2 x^2 + ...`` (``coefficients`` = c0, c1, ...).

    Inputs are uniform in ``input_range`` volts; ``bias`` holds further nodes at fixed voltages.  With a
    quadratic or higher term no linear network can fit it better than the best straight line
    (:func:`best_linear_error` gives that floor).
    """
    c = np.asarray(coefficients, dtype=float)
    if c.ndim != 1 or c.size < 2:
        raise ValueError(f"nonlinear regression needs polynomial coefficients c0, c1, ... (at least 2), got {c}")
    bias = dict(bias or {})
    bc, b = _held(network, [input_node], [output_node], ground, bias)
    x_train = rng.uniform(*input_range, size=(1, n_train))
    x_test = rng.uniform(*input_range, size=(1, n_test))
    poly = lambda x: np.polynomial.polynomial.polyval(x, c)  # noqa: E731
    return Task("nonlinear regression", network, bc, _with_bias(x_train, b),
                _noisy(poly(x_train), label_noise, rng), _with_bias(x_test, b), poly(x_test))


def interleaved_moons(rng: np.random.Generator, n: int, noise: float = 0.1):
    """``n`` points of two interleaved half moons in [0, 1]^2 and their classes (0 or 1), alternating."""
    labels = np.arange(n) % 2
    angle = rng.uniform(0.0, np.pi, n)
    x = np.where(labels == 0, np.cos(angle), 1.0 - np.cos(angle))
    y = np.where(labels == 0, np.sin(angle), 0.5 - np.sin(angle))
    pts = np.stack([x, y]) + noise * rng.normal(size=(2, n))
    # the noiseless moons span x in [-1, 2], y in [-0.5, 1]
    return (pts - np.array([[-1.0], [-0.5]])) / np.array([[3.0], [1.5]]), labels


def concentric_circles(rng: np.random.Generator, n: int):
    """``n`` points of a disk (class 0, radius 0.25) inside a ring (class 1, radii 0.33-0.48), both centred in
    [0, 1]^2, and their classes, alternating."""
    labels = np.arange(n) % 2
    angle = rng.uniform(0.0, 2.0 * np.pi, n)
    radius = np.where(labels == 0, 0.25 * np.sqrt(rng.uniform(0.0, 1.0, n)), rng.uniform(0.33, 0.48, n))
    return 0.5 + radius * np.stack([np.cos(angle), np.sin(angle)]), labels


DATASETS = {"moons": interleaved_moons, "circles": concentric_circles}


def nonlinear_classification(network: Network, input_nodes, output_nodes, ground: int, rng: np.random.Generator,
                             n_train_per_class: int = 20, n_test: int = 100, input_range=(0.0, 1.0),
                             bias: dict | None = None, dataset: str = "moons", complementary: bool = False,
                             class_values=None) -> Task:
    """Two classes of points in the plane that no straight line separates: ``dataset`` ``"moons"`` (two
    interleaved half moons) or ``"circles"`` (a disk inside a ring).

    Coordinates in [0, 1] are scaled to ``input_range`` volts, one input node each; ``complementary`` also
    applies ``1 - x`` and ``1 - y`` (four input nodes: x, y, 1 - x, 1 - y; a classifier linear in these is still
    linear in x and y).  Without ``class_values`` each class has an output node and the laboratory protocol of
    :func:`iris_classification` (class-mean targets pushed apart each epoch) applies; with ``class_values``
    (one desired output per class, for one output node, or an (n_outputs, 2) array) the targets are fixed and
    an example is classified by the nearest class value.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; use one of {', '.join(DATASETS)}")
    n_in = 4 if complementary else 2
    if len(input_nodes) != n_in:
        names = "x, y, 1 - x, 1 - y" if complementary else "x, y"
        raise ValueError(f"nonlinear classification needs {n_in} input nodes ({names}), got {len(input_nodes)}")
    if class_values is None:
        if len(output_nodes) != 2:
            raise ValueError("nonlinear classification with the laboratory protocol needs 2 output nodes (one per "
                             "class)")
    else:
        class_values = np.asarray(class_values, dtype=float).reshape(len(output_nodes), -1)
        if class_values.shape[1] != 2:
            raise ValueError(f"class_values needs one value per class (2) for each output, got {class_values.shape}")
    bias = dict(bias or {})
    bc, b = _held(network, input_nodes, output_nodes, ground, bias)
    lo, hi = input_range
    train, train_labels = DATASETS[dataset](rng, 2 * n_train_per_class)
    test, test_labels = DATASETS[dataset](rng, n_test)

    def volts(p):
        p = np.clip(p, 0.0, 1.0)
        if complementary:
            p = np.vstack([p, 1.0 - p])
        return _with_bias(lo + p * (hi - lo), b)

    n_out = len(output_nodes)
    fixed = (lambda labels: class_values[:, labels]) if class_values is not None else (  # noqa: E731
        lambda labels: np.zeros((n_out, len(labels))))
    return Task("nonlinear classification", network, bc, volts(train), fixed(train_labels), volts(test),
                fixed(test_labels), kind="classification", train_labels=train_labels, test_labels=test_labels,
                class_values=class_values)


def linear_classifier_accuracy(task: Task) -> float:
    """Test accuracy of the better of two linear classifiers (least squares on +-1 labels, and logistic
    regression) fitted to a two-class task's training inputs: what a classifier linear in the inputs reaches."""
    X = np.vstack([task.train_inputs, np.ones((1, task.n_train))]).T
    XT = np.vstack([task.test_inputs, np.ones((1, task.n_test))]).T
    y = task.train_labels.astype(float)
    w = np.linalg.lstsq(X, 2.0 * y - 1.0, rcond=None)[0]
    scores = [((XT @ w > 0) == task.test_labels).mean()]
    w = np.zeros(X.shape[1])
    for _ in range(50):  # logistic regression by Newton's method (a small ridge keeps separable data finite)
        p = 1.0 / (1.0 + np.exp(-X @ w))
        hessian = X.T @ (X * (p * (1 - p))[:, None]) + 1e-6 * np.eye(X.shape[1])
        w -= np.linalg.solve(hessian, X.T @ (p - y) + 1e-6 * w)
    scores.append(((XT @ w > 0) == task.test_labels).mean())
    return float(max(scores))


def best_linear_error(task: Task) -> float:
    """Mean squared training error of the best affine fit of the targets in the inputs: what a linear network
    can at best reach (its outputs are linear in its input voltages)."""
    X = np.vstack([task.train_inputs, np.ones((1, task.n_train))])
    coef, *_ = np.linalg.lstsq(X.T, task.train_targets.T, rcond=None)
    return float(((X.T @ coef - task.train_targets.T) ** 2).mean())
