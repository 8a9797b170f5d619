"""Evaluation behind `edgegan eval` and export's quality gate, torch-free; `import edgegan.runtime` never loads it.

Modules:
    datasets    load_images: one split of MNIST, Fashion-MNIST, a folder or an .npz as uint8 [N, H, W, C]
    image_data  ImageData, DataError, and the resize/channel conversion every reader applies
    idx         IDX files: reading them and finding a split's pair of files
    downloads   fetching MNIST/Fashion-MNIST from their mirrors into the cache, checked against SHA-256
    folders     the folder dataset (a tree of images, one subfolder per class)
    npz_files   the npz dataset (arrays in one .npz, read without pickle)
    evaluator   the evaluator contract: metadata keys, EvaluatorInfo, Evaluator, where the default one lives
    features    FeatureSet, the reference-statistics cache, FID/KID/precision/recall between two sets
    metrics     the distribution metrics on feature arrays (FID, KID, precision/recall, class coverage)
    per_class   per-class figures and the mode-collapse warnings
    quality     evaluate(): a generator scored against real data beside the real-vs-real floor; the report
    cli         the `edgegan eval` command
"""
