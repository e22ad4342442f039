"""Batch embedding on Beam (DirectRunner) and Parquet indexes: equal to Predictor.embed, resumable, bad files listed."""

import numpy as np
import pytest

from scfa_jax.inference import Predictor
from scfa_jax.inference import parquet_index
from scfa_jax.tools import embed
from scfa_jax.tools import search
from tests.test_inference_tools import clips  # pylint: disable=unused-import  # the shared clips fixture

beam_embed = pytest.importorskip('scfa_jax.inference.beam_embed')


@pytest.fixture(scope='module')
def predictor(evaluated_workdir):
  return Predictor.from_workdir(evaluated_workdir[1])


@pytest.mark.slow(seconds=25)
def test_beam_embedding_equals_predictor_resumes_and_lists_bad_files(predictor, evaluated_workdir, clips, tmp_path):
  from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=g-import-not-at-top
  folder, paths = clips
  broken = f'{folder}/broken.mp4'
  out = str(tmp_path / 'emb')
  options = PipelineOptions(flags=[], runner='DirectRunner')
  first, bad = beam_embed.run(predictor, evaluated_workdir[1], [paths[0], broken, paths[1]], out, options=options)
  assert [v for v, _ in bad] == [broken] and len(first.todo) == 3
  # The same videos spelled another way (as a folder given with ./ and a trailing slash is expanded) are done.
  respelled = [p.replace(folder, folder + '/.', 1) for p in paths]
  again, bad = beam_embed.run(predictor, evaluated_workdir[1], respelled + [broken], out, options=options)
  assert again.done == 2 and again.todo == [respelled[2], broken]  # Only what the first run did not store.

  table = parquet_index.read_table(out)
  assert sorted(table.column('video').to_pylist()) == sorted(paths)  # Each once; the broken file in none.
  rows = {r['video']: r for r in table.to_pylist()}
  np.testing.assert_allclose(np.array([rows[p]['embedding'] for p in paths]), predictor.embed(paths), atol=1e-5)
  head = beam_embed.top_k_head(predictor)
  expected = predictor.classify(paths, top_k=5, head=head)
  assert [rows[p]['top_classes'] for p in paths] == [e.classes for e in expected]
  identity = parquet_index.identity_of(out)
  assert identity['step'] == predictor.encoder.step and identity['dim'] == len(rows[paths[0]]['embedding'])
  assert identity['top_k_head'] == head

  # The local embed tool writes the same Parquet rows, and search reads either.
  local = str(tmp_path / 'local.parquet')
  embed.embed_to_file(predictor, paths, local)
  np.testing.assert_allclose(parquet_index.load(local).features, predictor.embed(paths), atol=1e-5)
  found = search.search(predictor, [paths[1]], parquet_index.load_any(out), k=1)
  assert found[0]['neighbours'][0]['video'] == paths[1]
  # Another model's identity is refused, naming the file.
  with pytest.raises(parquet_index.errors.BadFilesError, match='holds embeddings of .* step .*, not of .* step -1'):
    parquet_index.Writer(local, 4, {**parquet_index.identity_of(local), 'step': -1})
