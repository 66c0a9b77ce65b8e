"""JSON Schemas for the files in ``cases/`` (validated with ``jsonschema``)."""

from __future__ import annotations

from harness.core.dtypes import NAMES as _DTYPE_NAMES

# Names become parts of case ids, file and folder names: letters, digits and _ only, up to the end of the
# text (\Z: `$` would let a trailing newline through), and short, so an id stays a valid file name.
_NAME = {"type": "string", "pattern": r"^[A-Za-z0-9_]+\Z", "maxLength": 48}
_ID_PART = {"type": "string", "pattern": r"^[a-z0-9_]+\Z", "maxLength": 48}  # kernel and variant names
_SHORT_NAME = {**_NAME, "maxLength": 24}  # framework and exporter names
_DTYPE = {"enum": list(_DTYPE_NAMES)}
_OPSET = {"type": "integer", "minimum": 1, "maximum": 64}

_INPUT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["shape"],
    "properties": {
        "name": _NAME,
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "dtype": _DTYPE,
        "low": {"type": "number"},
        "high": {"type": "number"},
        # explicit values (e.g. an index tensor); shape must agree
        "values": {"type": "array"},
        # values from a .npy file, or one array (``key``) of a .npz file (user models); shape must agree
        "file": {"type": "string", "minLength": 1},
        "key": {"type": "string", "minLength": 1},
        # axes exported as dynamic (None); default [0] (the batch)
        "dynamic": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        # generator: uniform (default), randint, permutation, boxes, positive
        "init": {"enum": ["uniform", "randint", "permutation", "boxes", "positive", "unique"]},
    },
}

# What a variant may change; the entry carries the same keys as its base.
CASE_FIELDS = {
    "args": {"type": "array"},
    "kwargs": {"type": "object"},
    # a `call:` form: the last inputs are passed as these keyword arguments (e.g. axis as a tensor)
    "tensor_kwargs": {"type": "array", "items": _NAME, "minItems": 1},
    # a `call:` form: these kwargs' list values are passed as tuples (YAML has no tuple)
    "tuple_kwargs": {"type": "array", "items": _NAME, "minItems": 1},
    "inputs": {"type": "array", "items": _INPUT, "minItems": 1},
    "tolerance": {"type": "string"},
    # a list of dtypes, or the name of a set in cases/tolerances.yaml `dtype_sets`
    "dtypes": {"oneOf": [{"type": "array", "items": _DTYPE, "minItems": 1}, _NAME]},
    "opsets": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"min": _OPSET, "max": _OPSET},
    },
    "batches": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1},
    "skip": {"type": "string", "minLength": 3},
    "smoke": {"type": "boolean"},
    # run only these of the file's exporters (the others are left out and reported)
    "exporters": {"type": "array", "items": _SHORT_NAME, "minItems": 1},
    # a whole network (the --suite models matrices, a user model): its records feed the model tables
    "whole_model": {"type": "boolean"},
    # whole models: refuse a degenerate reference (constant, near zero, NaN/Inf, the same for
    # different inputs) as a harness error instead of judging it
    "check_reference": {"type": "boolean"},
    # a classifier: records also carry top-1 agreement (arg-max of output 0 over its last axis)
    "classifier": {"type": "boolean"},
    # entries of one serial group run one after another on one worker (--dist loadgroup, which
    # --suite models uses): e.g. the conversions that need GBs, so that two never overlap
    "serial_group": _NAME,
    # seconds the reference evaluator may spend on a failing case's blame (default 20)
    "blame_budget_s": {"type": "number", "exclusiveMinimum": 0},
    # one input set per seed instead of the case's own seed (a variant pinned from property mode)
    "input_seeds": {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1},
}

# Property-based exploration (``pytest --explore``): ranges to draw configurations from.
# A dimension is a fixed size, a {min, max} range, or the name of a dimension in ``dims``
# (dimensions with the same name are tied). A kwarg domain is a list of values or an
# integer {min, max} range. Constraints are small arithmetic/boolean expressions over
# the named dims and kwargs (evaluated with an AST whitelist, see harness/explore/strategies.py).
_RANGE = {"type": "object", "additionalProperties": False, "required": ["min", "max"],
          "properties": {"min": {"type": "integer"}, "max": {"type": "integer"}}}
_DIM = {"oneOf": [{"type": "integer", "minimum": 0}, _NAME, _RANGE]}
_EXPLORE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "dims": {"type": "object", "additionalProperties": _RANGE},
        "inputs": {"type": "array", "minItems": 1, "items": {
            "type": "object", "additionalProperties": False, "required": ["shape"],
            "properties": {"shape": {"type": "array", "items": _DIM}}}},
        "kwargs": {"type": "object", "additionalProperties": {
            "oneOf": [{"type": "array", "minItems": 1}, _RANGE]}},
        "constraints": {"type": "array", "maxItems": 32,
                        "items": {"type": "string", "minLength": 1, "maxLength": 400}},
        "dtypes": {"type": "array", "items": _DTYPE, "minItems": 1},
        # how many input sets (seeds) are drawn per exported model
        "input_seeds": {"type": "integer", "minimum": 1, "maximum": 16},
    },
}

_VARIANT = {"type": "object", "additionalProperties": False, "properties": dict(CASE_FIELDS)}

_ENTRY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["kernel", "table"],
    "properties": {
        "kernel": _ID_PART,
        "table": {
            "type": "object",
            "additionalProperties": False,
            "required": ["opsets"],
            "properties": {
                "opsets": {"type": "string"},
                "note": {"type": "string"},
            },
        },
        "api": {"type": "string"},
        "call": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_.]*\Z", "maxLength": 200},
        "builder": _NAME,
        "pack": {"enum": ["list"]},
        "shared_key": {"type": "string"},
        "unavailable": {"type": "string", "minLength": 3},
        "explore": _EXPLORE,
        "variants": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": _ID_PART,
            "additionalProperties": _VARIANT,
        },
        **CASE_FIELDS,
    },
}

MATRIX = {
    "type": "object",
    "additionalProperties": False,
    "required": ["framework", "exporters", "entries"],
    "properties": {
        "framework": _SHORT_NAME,
        "exporters": {"type": "array", "items": _SHORT_NAME, "minItems": 1},
        # modules imported by the controller and the runners: trusted code, named as dotted modules
        "plugins": {"type": "array", "items": {"type": "string", "maxLength": 200,
                                               "pattern": r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z"}},
        # exporter -> the opset it translates at; below it, one case per variant (the
        # highest lower opset) records the version conversion, the rest are reported skipped
        "native_opsets": {"type": "object", "additionalProperties": _OPSET},
        "defaults": {"type": "object", "additionalProperties": False,
                     "properties": dict(CASE_FIELDS)},
        # a crashed case of this framework runs once more, in a fresh server; why (required)
        "crash_retry": {"type": "object", "additionalProperties": False, "required": ["reason"],
                        "properties": {"reason": {"type": "string", "minLength": 10}}},
        "entries": {"type": "array", "items": _ENTRY, "minItems": 1},
    },
}

TOLERANCES = {
    "type": "object",
    "additionalProperties": False,
    "required": ["rules", "defaults"],
    "properties": {
        "rules": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["kind"],
                "properties": {"kind": {"type": "string"}, "source": {"type": "string"}},
            },
        },
        "defaults": {"type": "object", "additionalProperties": {"type": "string"}},
        # dtype -> rule that replaces an entry's closeness rule (abs-or-rel, allclose) at that dtype
        "coarse": {"type": "object", "additionalProperties": {"type": "string"}},
        # named dtype sets an entry may give as `dtypes: NAME`
        "dtype_sets": {"type": "object", "additionalProperties": {
            "type": "array", "items": _DTYPE, "minItems": 1}},
    },
}

EXPECTED = {
    "type": "object",
    "additionalProperties": False,
    "required": ["expected_failures"],
    "properties": {
        "expected_failures": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["reason"],
                "properties": {
                    # a cause id (harness.core.causes): the entry covers that cause wherever it shows
                    "cause": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]*-[0-9a-f]{8}$"},
                    "match": {"type": "string", "minLength": 1},
                    "opsets": {"type": "string"},
                    "status": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    "reason": {"type": "string", "minLength": 10},
                    "link": {"type": "string"},
                    "runtimes": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
                    "passes": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
                },
            },
        }
    },
}
