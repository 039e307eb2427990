"""teacher/load.py: one function loads and checks a teacher, with one set of errors."""
import pytest
import spacy

from spacy_skd.teacher.load import load_teacher
from spacy_skd.teacher.protocol import KDStudent, KDTeacher

TEACHERS = ["skd_crf_tagger", "skd_maxent_tagger", "skd_span_ner", "skd_biaffine_parser", "skd_mfvi_parser"]
STUDENTS = ["skd_crf_tagger", "skd_maxent_tagger", "skd_seqlabel_parser"]


@pytest.mark.parametrize("factory", TEACHERS)
def test_every_teacher_component_is_a_kd_teacher(factory):
    nlp = spacy.blank("en")
    nlp.add_pipe(factory, name="teacher")
    loaded, pipe, path = load_teacher(nlp, "teacher")
    assert loaded is nlp and pipe is nlp.get_pipe("teacher") and path == "<Language>"
    assert isinstance(pipe, KDTeacher)


@pytest.mark.parametrize("factory", STUDENTS)
def test_every_student_component_is_a_kd_student(factory):
    assert isinstance(spacy.blank("en").add_pipe(factory), KDStudent)


def test_load_teacher_errors(tmp_path):
    with pytest.raises(ValueError, match=r"\[skd-E224\].*paths.teacher"):
        load_teacher(tmp_path / "missing", "ner")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"\[skd-E303\].*empty"):
        load_teacher(tmp_path / "empty", "ner")
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    with pytest.raises(ValueError, match=r"\[skd-E225\].*Its components: sentencizer"):
        load_teacher(nlp, "ner")
    with pytest.raises(ValueError, match=r"\[skd-E226\].*Sentencizer"):
        load_teacher(nlp, "sentencizer")
