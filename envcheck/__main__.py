from envcheck.cli import main

main()
