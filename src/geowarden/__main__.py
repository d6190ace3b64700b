from geowarden.cli import main

main()
