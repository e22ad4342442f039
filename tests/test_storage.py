"""Which paths are object storage: an address with a URL scheme, nothing else."""

import pytest

from scfa_jax import storage


@pytest.mark.parametrize('path', ['gs://bucket/clips/a.mp4', 's3://b/x', 'ram://b', 'hdfs://host:9000/p'])
def test_addresses_with_a_scheme_are_remote(path):
  assert storage.is_remote(path)


@pytest.mark.parametrize('path', ['clips/a.mp4', '/data/a.mp4', 'take:1//a.mp4', './gs://x', 'C:/videos', ''])
def test_local_paths_are_local_even_with_colons_and_double_slashes(path):
  assert not storage.is_remote(path)


def test_a_local_folder_named_like_an_address_lists_through_os(tmp_path):
  folder = tmp_path / 'take:' / 'clips'  # tmp/take://clips would be the same folder, spelled with '//'
  folder.mkdir(parents=True)
  (folder / 'a.mp4').write_bytes(b'')
  spelled = f'{tmp_path}/take://clips'
  assert not storage.is_remote(spelled) and storage.isdir(spelled) and storage.listdir(spelled) == ['a.mp4']


def test_an_index_in_object_storage_keeps_no_faiss_file_beside_it(tmp_path):
  from scfa_jax.inference import ann  # pylint: disable=g-import-not-at-top
  assert ann.cache_prefix('gs://b/emb/') is None and ann.cache_prefix('gs://b/emb.parquet') is None
  assert ann.cache_prefix(str(tmp_path)) == str(tmp_path / '_ann')
  assert ann.cache_prefix(str(tmp_path / 'emb.parquet')) == str(tmp_path / 'emb.parquet') + '.ann'
