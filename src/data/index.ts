/** The data layer: readers, named datasets, download, split and batching. */
export type { Dataset, ImageSet, PixelScaling } from './types.js';
export { DataError, isDataError } from './errors.js';
export { MAX_DATA_BYTES } from './files.js';
export {
  IDX_IMAGES_MAGIC,
  IDX_LABELS_MAGIC,
  readIdxImages,
  readIdxLabels,
  readIdxPair,
  checkLabels,
  encodeIdxImages,
  encodeIdxLabels,
  type IdxImages,
  type IdxReadOptions,
} from './idx.js';
export { readCsvFile, parseCsv, type CsvOptions } from './csv.js';
export {
  MNIST_SAMPLE_SPLIT_SEED,
  DIGIT_CLASS_NAMES,
  loadMnistSample,
  readMnistSampleFiles,
  mnistSampleDir,
} from './mnist-sample.js';
export {
  loadDataset,
  listDatasets,
  locateNamedDataset,
  datasetSearchDirs,
  defaultDownloadDir,
  cacheRoot,
  findIdxFiles,
  DATASET_NAMES,
  DEFAULT_DATASET,
  FASHION_CLASS_NAMES,
  IDX_FILE_NAMES,
  SINGLE_CSV_TEST_FRACTION,
  type LoadOptions,
  type NamedDataset,
  type DatasetListing,
  type Searched,
} from './registry.js';
export {
  downloadDataset,
  CHECKSUMS,
  MIRRORS,
  DOWNLOADABLE,
  DOWNLOAD_FILES,
  type DownloadOptions,
  type DownloadProgress,
  type DownloadResult,
  type DownloadedFile,
  type FileChecksum,
  type DownloadableDataset,
} from './download.js';
export { createDownloadProgress, type DownloadProgressDisplay } from './download-progress.js';
export { splitIndices, validationSplit, shuffleEpoch, subsetImageSet, heldOutCount, type IndexSplit, type SplitOptions } from './split.js';
export { fillBatch, computeScaling, scalingTable, scalePixel } from './batches.js';
export { fingerprintDataset, fingerprintDifference, type DataFingerprint } from './fingerprint.js';
