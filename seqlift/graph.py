"""The graph of primitive operations a front end lowers a model to, and what is done to it before scoring.

A front end (``seqlift.frontends``: Keras, PyTorch) turns a model into a ``Graph`` whose nodes are the
operations of ``seqlift.rules`` with their weights as plain arrays. Everything after that (choosing
Rescale or RevealCancel per nonlinearity, mean-normalizing the first convolution, the engine) works
on the graph alone and imports no framework's layers.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from . import rules
from .errors import SeqliftError
from .choices import GENOMICS, RESCALE, REVEAL_CANCEL, RULES

# Each of ``choices.RULES`` as a table from layer class (or a ``rules`` operation class: the weighted
# operation feeding the nonlinearity) to rule; '*': every other nonlinearity.
RULE_PRESETS = {
    RESCALE: {},
    REVEAL_CANCEL: {"*": REVEAL_CANCEL},
    # "DeepLIFT-fc-RC-conv-RS" (Shrikumar et al. 2017, §4.2): RevealCancel after dense layers.
    GENOMICS: {rules.Dense: REVEAL_CANCEL},
}
# The rules a nonlinearity can have (a preset is a choice of one per layer kind).
NODE_RULES = (RESCALE, REVEAL_CANCEL)


@dataclass
class Node:
    op: rules.Op
    inputs: list[int]
    rule: str = RESCALE  # for nonlinear ops: how their multipliers are computed
    source: type | None = None  # class of the framework's layer that holds this op (for per-layer rule choice)


@dataclass
class Graph:
    """Primitive ops in topological order; node 0 is the model's input.

    input_shape: the explained input's per-sample shape as the engine sees it (``(L, 4)`` for a
    sequence model, whatever the model's own layout: ``input_layout`` says how callers' arrays are
    laid out, ``'channels_first'`` for ``(N, 4, L)``, and ``Explainer`` converts).
    """

    nodes: list[Node] = field(default_factory=list)
    output: int = 0
    final_activation: str | None = None  # 'sigmoid' or 'softmax' removed from the end
    input_shape: tuple = ()
    output_size: int = 0
    output_shape: tuple = ()  # the explained output's shape without the batch axis, e.g. (L, 2) for a profile head
    output_name: str = ""  # the explained output's name, of a model with several ('counts'), else ""
    normalized: list[str] = field(default_factory=list)
    input_name: str = ""  # the model input node 0 stands for: the one-hot sequence
    fixed_inputs: list[tuple[str, tuple]] = field(default_factory=list)  # every other input: (name, shape)
    fixed_values: object = None  # their packed values (b, E) while a compiled step runs (rules.FixedInput)
    input_layout: str = "channels_last"  # the model's own layout of the explained input
    frontend: str = ""  # the front end that lowered the model (seqlift.frontends)

    def add(self, op, inputs, source: type | None = None):
        self.nodes.append(Node(op, list(inputs), source=source))
        return len(self.nodes) - 1


def keep_ancestors(graph: Graph, output: int):
    """Drop every node the chosen output does not depend on, keeping topological order."""
    keep, stack = set(), [output]
    while stack:
        i = stack.pop()
        if i not in keep:
            keep.add(i)
            stack.extend(graph.nodes[i].inputs)
    keep.add(0)  # the explained input stays node 0 even when the output ignores it
    order = sorted(keep)
    remap = {old: new for new, old in enumerate(order)}
    graph.nodes = [graph.nodes[i] for i in order]
    for node in graph.nodes:
        node.inputs = [remap[j] for j in node.inputs]
    graph.output = remap[output]


def strip_final_activation(graph: Graph, output_rank: int):
    """Explain the logit: remove a final sigmoid or softmax (Shrikumar et al. 2016, §2.4-2.5)."""
    node = graph.nodes[graph.output]
    op = node.op
    if isinstance(op, rules.Softmax):
        if op.axis not in (-1, output_rank - 1):
            raise SeqliftError(f"{op.describe()}: only a softmax over the last axis is supported")
        graph.final_activation = "softmax"
    elif isinstance(op, rules.Elementwise) and op.fn_name == "sigmoid":
        graph.final_activation = "sigmoid"
    else:
        return
    graph.output = node.inputs[0]
    keep_ancestors(graph, graph.output)


def assign_rules(graph: Graph, rule) -> None:
    """Choose Rescale or RevealCancel for each nonlinearity.

    ``rule``: one of ``choices.RULES`` ('rescale', 'reveal-cancel', 'genomics'), or a dict from layer
    class to rule: the class of the layer holding the activation (or a base class of it), else for
    a standalone activation the nearest weighted layer before it; ``'*'`` sets the default.
    """
    if isinstance(rule, str):
        if rule not in RULE_PRESETS:
            raise SeqliftError(f"unknown rule '{rule}'; choose {', '.join(RULES)}")
        table = RULE_PRESETS[rule]
    else:
        table = dict(rule)
    for key, value in table.items():
        if value not in NODE_RULES:
            raise SeqliftError(f"unknown rule '{value}' in the rule table; use {' or '.join(NODE_RULES)}")
        if key != "*" and not isinstance(key, type):
            raise SeqliftError(f"rule table key {key!r}: give a layer class (e.g. keras.layers.Dense or "
                               "torch.nn.Linear), or '*' for every other layer")
    default = table.get("*", RESCALE)
    for node in graph.nodes:
        if node.op.linear:
            continue
        if not isinstance(node.op, rules.Elementwise):
            continue  # max pooling and products have one rule each
        weighted = _weighted_parent(graph, node)
        node.rule = (_rule_of(table, node.source)
                     or (weighted is not None and (_rule_of(table, weighted.source) or _rule_of(table, type(weighted.op))))
                     or default)


def _rule_of(table: dict, layer_class: type | None) -> str | None:
    """The rule ``table`` gives ``layer_class`` or its nearest base class in it (method resolution order)."""
    for cls in layer_class.__mro__ if layer_class is not None else ():
        if cls in table:
            return table[cls]
    return None


def _weighted_parent(graph: Graph, node: Node) -> Node | None:
    """The nearest weighted node feeding ``node`` through single-input linear ops."""
    while node.inputs:
        parent = graph.nodes[node.inputs[0]]
        if isinstance(parent.op, rules.Weighted):
            return parent
        if not parent.op.linear or len(parent.inputs) != 1:
            return None
        node = parent
    return None


def normalize_first_convolution(graph: Graph) -> list[str]:
    """Mean-normalize every convolution or dense layer that reads the one-hot input directly.

    Shrikumar et al. 2016, §2.6: on one-hot input each position sums to one, so moving the mean
    weight of each column into the bias leaves predictions unchanged, and an all-zeros input then
    behaves like the average base. Returns the names of the layers normalized.
    """
    names = []
    if len(graph.input_shape) != 2:
        return names  # not a (length, channels) sequence input
    for node in graph.nodes:
        if node.inputs == [0] and isinstance(node.op, rules.Weighted) and node.op.normalizable:
            if getattr(node.op, "groups", 1) != 1:
                warnings.warn(f"{node.op.describe()} is a grouped convolution: its columns do not see one-hot "
                              "rows whole, so it is not mean-normalized", stacklevel=2)
                continue
            node.op.normalize()
            names.append(node.op.name)
    graph.normalized = names
    return names
