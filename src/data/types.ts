/**
 * Datasets as the trainer sees them: images kept as bytes (one byte per pixel, 0-255) and
 * converted to floats only when a batch is filled, so a 60,000-image set costs 47 MB, not 188.
 */
export interface ImageSet {
  /** Number of images. */
  count: number;
  /** Image height and width in pixels (for CSV sets without a known shape: 1 x features). */
  height: number;
  width: number;
  /** Pixels per image: height * width. */
  features: number;
  /** count * features bytes, image after image, row-major. */
  images: Uint8Array;
  /** count labels, each in [0, classes). */
  labels: Uint8Array;
}

export interface Dataset {
  /** 'mnist-sample', 'fashion-mnist', 'mnist', or the path the user gave. */
  name: string;
  /** Where it was read from (directory or file paths), for reports. */
  source: string;
  classes: number;
  /** Human names of the classes: '0'..'9' for digits, 'T-shirt/top', 'Trouser', ... for Fashion-MNIST. */
  classNames: string[];
  train: ImageSet;
  test: ImageSet;
  /**
   * Caveats the user should see (printed by the CLI, kept in reports), e.g. that the test set
   * was held out of a single CSV file. Absent when there is nothing to say.
   */
  notes?: string[];
}

/** How bytes become floats when a batch is filled. */
export type PixelScaling =
  | { kind: 'unit' } // x / 255, in [0, 1]
  | { kind: 'standardize'; mean: number; std: number }; // (x / 255 - mean) / std, statistics of the training split
