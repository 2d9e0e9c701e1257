"""Entry point of the component provider plugin (see PulumiPlugin.yaml and asya_pulumi/provider.py)."""

import sys

from pulumi.provider import main

from asya_pulumi.provider import AsyaProvider

if __name__ == "__main__":
    main(AsyaProvider(), sys.argv[1:])
