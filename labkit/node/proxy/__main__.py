import sys

from labkit.node.proxy.proxy import main

sys.exit(main())
