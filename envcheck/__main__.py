from envcheck._entry import main

main()
