"""Adapter for rule extract_region_features: detector features of one subsample split (no augmentation)."""
from pathlib import Path

from crrg_clip.data.region_dataset import Normalize, load_detector_data
from crrg_clip.models.detector import RegionDetector
from crrg_clip.region_features import extract_region_features, save_region_features
from crrg_clip.runtime import start_job

device = start_job(snakemake).device
params = snakemake.params
detector = RegionDetector.from_pretrained(Path(snakemake.input.config).parent, device)
data = load_detector_data(
    images_path=snakemake.input.images,
    index_path=snakemake.input.index,
    regions_path=snakemake.input.regions,
    split_path=snakemake.input.split,
    split=snakemake.wildcards.split,
    normalize=Normalize(detector.config.normalize_mean, detector.config.normalize_std),
)
tensors = extract_region_features(detector, data, batch_size=params.batch_size, device=device)
save_region_features(snakemake.output.features, snakemake.output.rows, tensors, data.dicom_ids, data.rows)
