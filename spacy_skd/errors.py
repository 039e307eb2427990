"""Error and warning catalogue.

Every message a user can trigger lives here, coded `[skd-E###]` / `[skd-W###]` so that it is
searchable and stays distinct from spaCy's own codes. A code is never renumbered or reused; a
retired code leaves a gap. A message says what happened, repeats the offending value and says
how to fix it.

Blocks: E001-E049 structures (`structs/`), E050-E099 readers (`training/readers.py`),
E100-E149 models and components, E150-E199 KD, E200+ training and CLI.
"""


class _Coded(type):
    """Render class attributes `E123 = "..."` as "[skd-E123] ..." on access."""

    def __getattribute__(cls, code: str):
        msg = super().__getattribute__(code)
        if code.startswith(("E", "W")) and code[1:].isdigit():
            return f"[skd-{code}] {msg}"
        return msg


class Warnings(metaclass=_Coded):
    W001 = ("Tag sequence {tags} is not valid in the {scheme} scheme at position {i}; "
            "it was repaired ({rule}).")



class Errors(metaclass=_Coded):
    # --- structures (E001-E049) ---
    E001 = ("Structures run in float32 or float64, got {dtype}. Cast the potentials with "
            "`.float()` or `.double()`; half precision overflows the log-space recursions.")
    E002 = ("Expected {name} of shape {expected}, got {shape}.")
    E003 = ("Sequence lengths must lie in [0, {max_len}] (the padded length), got {lengths}.")
    E004 = ("Unknown tag scheme '{scheme}'. Choose one of: {options}.")
    E005 = ("Tag '{tag}' is not a valid {scheme} tag. {scheme} tags look like {example}.")
    E006 = ("Span ({start}, {end}, '{label}') does not fit a sequence of {n} tokens or overlaps "
            "another span; spans must be non-overlapping with 0 <= start < end <= n.")
    E007 = ("Entity label '{label}' cannot be used with the {scheme} scheme: labels must be "
            "non-empty and must not be one of the scheme's reserved tags {reserved}.")
    E008 = ("Tag sequence {tags} is not valid in the {scheme} scheme at position {i}: {rule}. "
            "Fix the tags, or pass strict=False to repair them.")
    # --- readers (E050-E099) ---
    E050 = ("Corpus path '{path}' does not exist. Check the path in the [corpora] block or the "
            "--paths.* override.")
    E051 = ("{path}, line {line}: expected {expected} whitespace-separated columns like the "
            "other lines of this file, found {found}: {text!r}.")
    E052 = ("{path}, line {line}: tag {tag!r} is not a valid {scheme} tag. Set `scheme` to the "
            "file's tag scheme (IOB1 for CoNLL-2003, IOB2 for CoNLL-2002).")
    E053 = ("{path}, line {line}: {n_words} tokens in seq.in but {n_tags} tags in seq.out; the "
            "two files must be line-aligned with one tag per token.")
    E054 = ("{path}: seq.in has {n_in} lines but seq.out has {n_out}; the two files must be "
            "line-aligned.")
    E055 = ("Slot-filling corpus '{path}' must be a folder holding 'seq.in' and 'seq.out' "
            "(SNIPS/ATIS layout); missing: {missing}.")
    E056 = ("{path}, line {line}: could not decode the file as {encoding} ({err}). Re-encode it "
            "as UTF-8.")
    E057 = ("{path}: corrupt gzip file ({err}). Recompress it or pass the uncompressed text.")
    E058 = ("`limit` must be >= 0 (0 means no limit), got {limit}.")
    E059 = ("{path}: `tag_column` {tag_column} does not select a tag column in a file with "
            "{n_columns} columns. Column 0 holds the token; use 1 to {last} or -1 (the last column).")
    E060 = ("{path}: seq.in has {n_in} lines but label has {n_label}; the intent file must be "
            "line-aligned with seq.in.")
    E061 = ("`min_length` must be >= 0 (a number of whitespace tokens), got {min_length}.")
    # --- models and components (E100-E149) ---
    E100 = ("Component '{name}' has no labels. Add labels with `add_label`, pass `labels` in "
            "[initialize.components.{name}], or train on examples that have entities.")
    E101 = ("Component '{name}' cannot add label '{label}' after its model was initialized. "
            "Add all labels before `initialize`, e.g. through [initialize.components.{name}.labels].")
    E102 = ("Component '{name}' produced a loss of {value}. A negative or non-finite "
            "likelihood loss is a bug upstream (exploding learning rate or a broken structure); "
            "lower the learning rate or report it.")
    E103 = ("Model output of width {got} does not match the {expected} tags of component "
            "'{name}' ({scheme} over labels {labels}).")
    E104 = ("Label '{label}' of component '{name}' is not a string or is empty.")
    E105 = ("Component '{name}' expects a model built by {expected}, but the model has no "
            "'{ref}' layer. Use the architecture named in the component's default config.")
    # --- KD (E150-E199) ---
    # --- training and CLI (E200+) ---
