"""Imports inside hf_mtkd go one way: no module imports from a layer above its own (function-level imports count).

Layers, lowest first:
  foundation  utils, arguments, config_parser, registry (the method registry: bookkeeping only)
  corpora     native corpus readers and the synthetic demo corpus (below data: data loads corpora, never back)
  domain      data, metrics, modeling_utils, auto_classes, run_summary, plots, inference,
              windowing (the whole-utterance window rule), models (the architectures, whatever method trains them)
  hub         model cards and pushing a saved folder (the trainer writes its own card: hub sits below training)
  training    TrainingArguments, SERTrainer, the Method base class, the training entry (`training.run`)
  distillation  the floor under the methods: teachers, the KL pieces, the teacher-output cache
  methods     every other subpackage: one folder per method (finetune, mtkd, self_distillation, ...); a
              method folder imports no other method folder
  entries     the multi-stage runner, the command line, the package's lazy `__init__`
The registry finds method folders and the Auto-class table finds model classes by module name at run time:
that is plugin discovery, not an import of an upper layer.
"""

import ast
from pathlib import Path

import hf_mtkd

PACKAGE = Path(hf_mtkd.__file__).resolve().parent
LAYERS = {
    "foundation": ("hf_mtkd.utils", "hf_mtkd.arguments", "hf_mtkd.config_parser", "hf_mtkd.registry"),
    "corpora": ("hf_mtkd.corpora",),
    "domain": (
        "hf_mtkd.data",
        "hf_mtkd.metrics",
        "hf_mtkd.modeling_utils",
        "hf_mtkd.auto_classes",
        "hf_mtkd.run_summary",
        "hf_mtkd.plots",
        "hf_mtkd.inference",
        "hf_mtkd.windowing",
        "hf_mtkd.models",
    ),
    "hub": ("hf_mtkd.hub",),
    "training": ("hf_mtkd.training",),
    "distillation": ("hf_mtkd.distillation",),
    "methods": (),  # every subpackage not named elsewhere
    "entries": ("hf_mtkd.multi_stage", "hf_mtkd.pipeline_axes", "hf_mtkd.cli", "hf_mtkd"),
}
ORDER = list(LAYERS)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    best, best_len = None, -1
    for layer, prefixes in LAYERS.items():
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = layer, len(prefix)
    if best in (None, "entries") and module.count(".") >= 1 and best_len <= len("hf_mtkd"):
        return "methods"  # a subpackage nobody listed: a method folder
    return best


def imported_modules(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)  # `from pkg import submodule`
    return {name for name in found if name == "hf_mtkd" or name.startswith("hf_mtkd.")}


def existing(name: str) -> bool:
    relative = Path(*name.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").is_file() or (PACKAGE / relative / "__init__.py").is_file()


def test_no_module_imports_from_a_layer_above_its_own():
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        mine = ORDER.index(layer_of(module))
        for target in imported_modules(path, module):
            if not existing(target):
                continue  # `from pkg import name` where name is not a module
            theirs = ORDER.index(layer_of(target))
            if theirs > mine:
                violations.append(f"{module} ({ORDER[mine]}) imports {target} ({ORDER[theirs]})")
    assert not violations, "\n".join(violations)


def test_the_layer_map_knows_the_method_folders():
    assert layer_of("hf_mtkd.mtkd.trainer") == "methods"
    assert layer_of("hf_mtkd.self_distillation") == "methods"
    assert layer_of("hf_mtkd.training.run") == "training" and layer_of("hf_mtkd") == "entries"
    assert layer_of("hf_mtkd.cli.train") == "entries" and layer_of("hf_mtkd.hub.card") == "hub"


def test_the_core_never_imports_a_method_folder():
    """Methods are found through the registry; no shared module names one (the multi-stage runner used to import
    MTKD's teacher-weight formatter: that table is now MTKD's `multi_stage_tables` hook)."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        if layer_of(module) == "methods":
            continue
        offenders += [f"{module} imports {target}" for target in imported_modules(path, module)
                      if existing(target) and layer_of(target) == "methods"]
    assert not offenders, "\n".join(offenders)


def method_folder(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_no_method_folder_imports_another():
    """What two methods share lives in the distillation floor (or lower), never in one of them."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        if layer_of(module) != "methods":
            continue
        offenders += [f"{module} imports {target}" for target in imported_modules(path, module)
                      if existing(target) and layer_of(target) == "methods"
                      and method_folder(target) != method_folder(module)]
    assert not offenders, "\n".join(offenders)
